// Entry of the browser bundle the weights benchmark loads (esbuild, platform browser: the
// package.json `browser` maps give the browser libp2p node and the IndexedDB cache). The
// page joins the mesh through the provider's WebSocket address and times a Helia fetch of
// the model's parts, and a plain HTTP download of the same bytes.
import { createMeshPeer } from '@shardmesh/mesh'
import { weightsNode } from '@shardmesh/weights'

/** `closeMs`: stopping the weights node after the fetch (waits for the cache's IndexedDB writes). */
export interface PageRun { bytes: number, ms: number, networkBytes?: number, sources?: string[], closeMs?: number }

/**
 * Helia: join via `bootstrap` (ws), open the manifest, fetch every part; `cache`: an IndexedDB
 * name, or memory. puppeteer passes an `undefined` argument as `null`: null is memory too
 * (before, it opened an IndexedDB database named "null", so "Helia without the cache" was not).
 */
async function helia (bootstrap: string, cid: string, cache?: string | null, tuning: { partConcurrency?: number, blockConcurrency?: number } = {}): Promise<PageRun> {
  const node = await createMeshPeer({ bootstrap: [bootstrap], allowLocalDial: true })
  const weights = weightsNode({ libp2p: node, cache: cache ?? undefined, ...tuning })
  await weights.start()
  try {
    const manifest = await weights.openManifest(cid, { providers: [bootstrap], useMesh: false })
    const start = performance.now()
    const result = await weights.fetchParts(manifest, manifest.parts.map(p => p.id), { providers: [bootstrap], useMesh: false })
    const ms = performance.now() - start
    const closing = performance.now()
    await weights.stop()
    return { bytes: result.bytes, networkBytes: result.networkBytes, ms, sources: [...new Set(Object.values(result.sources))], closeMs: performance.now() - closing }
  } finally {
    await weights.stop()
    await node.stop()
    if (cache != null) await new Promise(resolve => { const r = indexedDB.deleteDatabase(cache); r.onsuccess = r.onerror = r.onblocked = resolve })
  }
}

/** Plain HTTP: GET every part, `concurrency` at a time, into memory. */
async function http (base: string, parts: string[], concurrency: number): Promise<PageRun> {
  const start = performance.now()
  let bytes = 0
  let next = 0
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < parts.length) {
      const id = parts[next++]
      const res = await fetch(`${base}/parts/${encodeURIComponent(id)}`)
      if (!res.ok) throw new Error(`GET ${id}: HTTP ${res.status}`)
      const n = (await res.arrayBuffer()).byteLength
      bytes += n
    }
  }))
  return { bytes, ms: performance.now() - start }
}

(globalThis as unknown as { bench: unknown }).bench = { helia, http }
