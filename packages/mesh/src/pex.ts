import { lpStream } from '@libp2p/utils'
import { isPeerId } from './codec.ts'
import type { Connection, Stream } from '@libp2p/interface'

/** Peer exchange: ask a connected peer for members it knows, to dial them. */
export const PEX_PROTOCOL = '/shardmesh/peers/1.0.0'
const MAX_PEERS = 32
const MAX_ADDRS = 16
const MAX_BYTES = 64 * 1024

export interface PeerHint { peerId: string, addrs: string[] }

export interface PexComponents {
  registrar: {
    handle: (protocol: string, handler: (stream: Stream, connection: Connection) => void | Promise<void>, options?: { runOnLimitedConnection?: boolean, maxInboundStreams?: number }) => Promise<void>
    unhandle: (protocol: string) => Promise<void>
  }
}

/** Validate a peer-exchange answer; drops anything malformed. */
export function parseHints (bytes: Uint8Array): PeerHint[] {
  let value: unknown
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  } catch {
    return []
  }
  const peers = (value as { peers?: unknown } | null)?.peers
  if (!Array.isArray(peers)) return []
  return peers.slice(0, MAX_PEERS).filter((p): p is PeerHint =>
    typeof p === 'object' && p !== null && isPeerId(p.peerId) && Array.isArray(p.addrs) && p.addrs.length <= MAX_ADDRS &&
    p.addrs.every((a: unknown) => typeof a === 'string' && a.startsWith('/') && a.length <= 512))
}

/** Serve up to 32 members (random) to whoever asks. */
export async function servePex (components: PexComponents, known: (requester: string) => PeerHint[]): Promise<void> {
  await components.registrar.handle(PEX_PROTOCOL, async (stream, connection) => {
    try {
      const hints = known(connection.remotePeer.toString())
      for (let i = hints.length - 1; i > 0; i--) {
        const j = Math.floor(Math.random() * (i + 1));
        [hints[i], hints[j]] = [hints[j], hints[i]]
      }
      const lp = lpStream(stream, { maxDataLength: MAX_BYTES })
      await lp.write(new TextEncoder().encode(JSON.stringify({ peers: hints.slice(0, MAX_PEERS) })), { signal: AbortSignal.timeout(5000) })
      await stream.close({ signal: AbortSignal.timeout(5000) })
    } catch (err) {
      stream.abort(err as Error)
    }
  }, { runOnLimitedConnection: true, maxInboundStreams: 8 })
}

/** Ask the peer at the other end of `connection` for members it knows. */
export async function askPex (connection: Connection, options: { signal: AbortSignal }): Promise<PeerHint[]> {
  const stream = await connection.newStream(PEX_PROTOCOL, { signal: options.signal, runOnLimitedConnection: true })
  try {
    const lp = lpStream(stream, { maxDataLength: MAX_BYTES })
    const answer = await lp.read({ signal: options.signal })
    await stream.close({ signal: options.signal }).catch(() => {})
    return parseHints(answer.subarray())
  } catch (err) {
    stream.abort(err as Error)
    throw err
  }
}
