// Browser-peer figures (issue 11), in one run on this machine: per-hop network latency tab↔tab
// over the direct WebRTC connection vs Node↔Node over TCP (libp2p ping round trips, median of
// 50), the time from opening the peer page to every tab serving, and decode tokens/s through
// a pipeline of 2 tabs (SwiftShader WebGPU) vs 2 Node peers (CPU), stories260K, greedy.
// Needs root (a network namespace) and Debian's chromium, as the e2e tests.
// Run: node test/bench/browser-peer.ts
import { join } from 'node:path'
import { createMeshPeer } from '@shardmesh/mesh'
import { PeerMesh, waitFor } from '../browser/peer-mesh.ts'
import { storiesDir } from '../fixtures.ts'

const PINGS = 50
const TOKENS = 64
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

async function servedBy (m: PeerMesh, kind: string, stages: number): Promise<void> {
  await waitFor(`a ${stages}-stage plan on ${kind} peers`, async () => {
    const v = await m.mesh()
    return v.plan?.stages.length === stages && v.plan.stages.every(s => v.peers.some(p => p.peerId === s.primary && p.runtime.name === kind && p.layers.some(([a, b]) => a <= s.range[0] && b >= s.range[1]))) ? true : undefined
  }, 120_000, async () => await m.describe())
}

const result: Record<string, unknown> = {}

// tabs
const tabs = new PeerMesh()
try {
  await tabs.start({ model: gguf, tabs: 2, ftLevel: 'low', pageBuild: 'bench' })
  await servedBy(tabs, 'chrome', 2)
  result.openToServingMs = Math.round(performance.now() - tabs.openedAt)
  const [a, b] = await Promise.all(tabs.tabs.map(async t => await tabs.status(t)))
  const rtts = await tabs.tabs[0].page.evaluate(async (id: string, n: number) => await (globalThis as unknown as { shardmeshPeer: { ping: (p: string, n: number) => Promise<number[]> } }).shardmeshPeer.ping(id, n), b.peerId!, PINGS)
  result.tabToTabWebRtcPingMs = { median: median(rtts), min: Math.min(...rtts), max: Math.max(...rtts) }
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
  await x.dial(y.getMultiaddrs()[0])
  const rtts: number[] = []
  for (let i = 0; i < PINGS; i++) rtts.push(await x.services.ping.ping(y.peerId))
  result.nodeToNodeTcpPingMs = { median: median(rtts), min: Math.min(...rtts), max: Math.max(...rtts) }
} finally {
  await x.stop()
  await y.stop()
}

console.log(JSON.stringify(result))
console.table(Object.entries(result).map(([k, v]) => ({ figure: k, value: typeof v === 'object' ? JSON.stringify(v) : v })))
process.exit(0)
