// Browser-peer figures (issue 11), in one run on this machine: per-hop network latency tab↔tab
// over the direct WebRTC connection vs Node↔Node over TCP (libp2p ping round trips, median of
// 50); bulk throughput over the same two links (activation-sized frames streamed back to
// back, browser-peer/src/bulk.ts, median of 3 per frame size); the time from opening the peer
// page to every tab serving, for stories260K and synthetic-100m (Q8_0, written as a GGUF);
// and decode tokens/s through a pipeline of 2 tabs (SwiftShader WebGPU) vs 2 Node peers
// (CPU), stories260K, greedy.
// Needs root (a network namespace) and Debian's chromium, as the e2e tests.
// Run: node test/bench/browser-peer.ts
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createMeshPeer } from '@shardmesh/mesh'
import { syntheticModel, SYNTHETIC_PRESETS, writeGguf } from '@shardmesh/model'
import { handleBulk, sendBulk } from '../../browser-peer/src/bulk.ts'
import type { BulkRun } from '../../browser-peer/src/bulk.ts'
import { PeerMesh, waitFor } from '../browser/peer-mesh.ts'
import { storiesDir } from '../fixtures.ts'

const PINGS = 50
const TOKENS = 64
const BULK_REPS = 3
/**
 * Activation frames (f32 hidden states): a 64-token prefill of synthetic-100m (dim 768), one
 * token of synthetic-100m, one token of stories260K (dim 64); each streamed until `bytes` have
 * gone (frames = bytes / frame). Largest first: 4 MiB of 256-byte frames back to back failed
 * a run tab↔tab in each of 3 bench runs, and in 2 the direct WebRTC connection closed (likely
 * its monitor's pings queued behind the frames), leaving none for the sizes after it.
 */
const FRAMES = [
  { what: 'synthetic-100m, 64-token prefill', frameBytes: 64 * 768 * 4, bytes: 32 * 2 ** 20 },
  { what: 'synthetic-100m, 1 token', frameBytes: 768 * 4, bytes: 8 * 2 ** 20 },
  { what: 'stories260K, 1 token', frameBytes: 64 * 4, bytes: 2 ** 20 }
]
const gguf = join(storiesDir(), 'stories260K.gguf')
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] }

/** Decode tok/s of one completion (usage over the request's wall time minus nothing: prompt is 5 tokens). */
async function decode (m: PeerMesh): Promise<number> {
  const model = (await m.http('/v1/models')).data[0].id as string
  await m.http('/v1/completions', { model, prompt: 'Once upon a time', max_tokens: 8, temperature: 0 }) // warm-up
  const t0 = performance.now()
  const r = await m.http('/v1/completions', { model, prompt: 'Once upon a time', max_tokens: TOKENS, temperature: 0 })
  return Math.round(r.usage.completion_tokens / ((performance.now() - t0) / 1000) * 10) / 10
}

/** MB/s per frame size: median of BULK_REPS runs of `send`; a run that fails is counted and its error kept. */
async function bulkFigures (send: (frameBytes: number, frames: number) => Promise<BulkRun>): Promise<Record<string, { frameBytes: number, medianMBps: number | null, runs: number[], failed: string[] }>> {
  const out: Record<string, { frameBytes: number, medianMBps: number | null, runs: number[], failed: string[] }> = {}
  for (const f of FRAMES) {
    const runs: number[] = []
    const failed: string[] = []
    for (let i = 0; i < BULK_REPS; i++) {
      try {
        const r = await send(f.frameBytes, Math.round(f.bytes / f.frameBytes))
        runs.push(Math.round(r.bytes / 1e6 / (r.ms / 1000) * 10) / 10)
      } catch (err) {
        failed.push(String(err).slice(0, 300))
      }
    }
    out[f.what] = { frameBytes: f.frameBytes, medianMBps: runs.length > 0 ? median(runs) : null, runs, failed }
  }
  return out
}

async function servedBy (m: PeerMesh, kind: string, stages: number, timeoutMs = 120_000): Promise<void> {
  await waitFor(`a ${stages}-stage plan on ${kind} peers`, async () => {
    const v = await m.mesh()
    return v.plan?.stages.length === stages && v.plan.stages.every(s => v.peers.some(p => p.peerId === s.primary && p.runtime.name === kind && p.layers.some(([a, b]) => a <= s.range[0] && b >= s.range[1]))) ? true : undefined
  }, timeoutMs, async () => await m.describe())
}

const result: Record<string, unknown> = {}

// tabs
const tabs = new PeerMesh()
try {
  await tabs.start({ model: gguf, tabs: 2, ftLevel: 'low', pageBuild: 'bench' })
  await servedBy(tabs, 'chrome', 2)
  result.openToServingMsStories260K = Math.round(performance.now() - tabs.openedAt)
  const [a, b] = await Promise.all(tabs.tabs.map(async t => await tabs.status(t)))
  const rtts = await tabs.tabs[0].page.evaluate(async (id: string, n: number) => await (globalThis as unknown as { shardmeshPeer: { ping: (p: string, n: number) => Promise<number[]> } }).shardmeshPeer.ping(id, n), b.peerId!, PINGS)
  result.tabToTabWebRtcPingMs = { median: median(rtts), min: Math.min(...rtts), max: Math.max(...rtts) }
  result.tabToTabWebRtcBulk = await bulkFigures(async (frameBytes, frames) => await tabs.tabs[0].page.evaluate(async (id: string, size: number, n: number) => await (globalThis as unknown as { shardmeshPeer: { bulk: (p: string, s: number, n: number) => Promise<BulkRun> } }).shardmeshPeer.bulk(id, size, n), b.peerId!, frameBytes, frames))
  result.tabsDecodeTokensPerSecond = await decode(tabs)
  result.tabBenchTokensPerSecond = [a.benchTokensPerSecond, b.benchTokensPerSecond]
} finally {
  await tabs.stop()
}

// Node peers
const nodes = new PeerMesh()
try {
  await nodes.start({ model: gguf, tabs: 0, nodePeers: 2, ftLevel: 'low', pageBuild: 'bench' })
  await servedBy(nodes, 'node', 2)
  result.nodesDecodeTokensPerSecond = await decode(nodes)
} finally {
  await nodes.stop()
}

// Node↔Node over TCP on loopback, in this process
const x = await createMeshPeer({ listen: ['/ip4/127.0.0.1/tcp/0'] })
const y = await createMeshPeer({ listen: ['/ip4/127.0.0.1/tcp/0'] })
try {
  await handleBulk(y)
  const conn = await x.dial(y.getMultiaddrs()[0])
  const rtts: number[] = []
  for (let i = 0; i < PINGS; i++) rtts.push(await x.services.ping.ping(y.peerId))
  result.nodeToNodeTcpPingMs = { median: median(rtts), min: Math.min(...rtts), max: Math.max(...rtts) }
  result.nodeToNodeTcpBulk = await bulkFigures(async (frameBytes, frames) => await sendBulk(conn, frameBytes, frames))
} finally {
  await x.stop()
  await y.stop()
}

// synthetic-100m (Q8_0, 116 MB of weights): open the page → 2 tabs serving
const dir = await mkdtemp(join(tmpdir(), 'shardmesh-bench-'))
const big = new PeerMesh()
try {
  const file = join(dir, 'synthetic-100m-q8_0.gguf')
  await writeFile(file, writeGguf(syntheticModel(SYNTHETIC_PRESETS['synthetic-100m']), { matrixType: 'Q8_0' }))
  await big.start({ model: file, tabs: 2, ftLevel: 'low', pageBuild: 'bench' })
  await servedBy(big, 'chrome', 2, 600_000)
  result.openToServingMsSynthetic100m = Math.round(performance.now() - big.openedAt)
} finally {
  await big.stop()
  await rm(dir, { recursive: true, force: true })
}

console.log(JSON.stringify(result))
console.table(Object.entries(result).map(([k, v]) => ({ figure: k, value: typeof v === 'object' ? JSON.stringify(v) : v })))
process.exit(0)
