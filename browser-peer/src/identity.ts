// The tab's libp2p key, kept in sessionStorage: a reload of this tab comes back as the same
// peer (a head waiting for a lost hop to return sees it come back; its layers are in the
// IndexedDB cache), while other tabs of the same browser — which share localStorage and
// IndexedDB — each keep their own identity.
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'

type PrivateKey = ReturnType<typeof privateKeyFromProtobuf>

const KEY = 'shardmesh-peer-key'

function toBase64 (bytes: Uint8Array): string {
  return btoa(Array.from(bytes, b => String.fromCharCode(b)).join(''))
}

function fromBase64 (text: string): Uint8Array {
  return Uint8Array.from(atob(text), c => c.charCodeAt(0))
}

/** This tab's key: the one stored in sessionStorage, or a new Ed25519 key stored there. */
export async function tabKey (storage: Storage | undefined = globalThis.sessionStorage): Promise<PrivateKey> {
  const stored = storage?.getItem(KEY)
  if (stored != null) {
    try {
      return privateKeyFromProtobuf(fromBase64(stored))
    } catch {
      // a damaged entry: replace it
    }
  }
  const key = await generateKeyPair('Ed25519')
  storage?.setItem(KEY, toBase64(privateKeyToProtobuf(key)))
  return key
}
