// Entry of the browser bundle the weights browser test loads (esbuild, platform browser): a
// browser mesh peer joins through the provider's WebSocket address and fetches every part of
// a model through Helia into an IndexedDB cache; then a fresh weights node without any
// network reads the same parts back from that cache.
import { createMeshPeer } from '@shardmesh/mesh'
import { weightsNode } from '@shardmesh/weights'

export interface PageFetch {
  sources: Record<string, string>
  /** sha-256 (hex) of each part as fetched, and as read back from IndexedDB with no network. */
  fetched: Record<string, string>
  cached: Record<string, string>
  held: string[]
}

async function sha256 (bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>))
  return Array.from(digest, b => b.toString(16).padStart(2, '0')).join('')
}

async function digests (parts: Map<string, Uint8Array>): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const [id, bytes] of parts) out[id] = await sha256(bytes)
  return out
}

async function fetchModel (bootstrap: string, cid: string, cache: string): Promise<PageFetch> {
  const node = await createMeshPeer({ bootstrap: [bootstrap], allowLocalDial: true })
  const online = weightsNode({ libp2p: node, cache })
  await online.start()
  let result
  try {
    const manifest = await online.openManifest(cid, { providers: [bootstrap] })
    result = await online.fetchParts(manifest, manifest.parts.map(p => p.id), { providers: [bootstrap] })
  } finally {
    await online.stop()
    await node.stop()
  }
  const offline = weightsNode({ cache })
  await offline.start()
  try {
    const manifest = await offline.openManifest(cid)
    const ids = manifest.parts.map(p => p.id)
    return { sources: result.sources, fetched: await digests(result.parts), cached: await digests(await offline.readParts(manifest, ids)), held: await offline.held(manifest) }
  } finally {
    await offline.stop()
  }
}

(globalThis as unknown as { weightsPage: unknown }).weightsPage = { fetchModel }
