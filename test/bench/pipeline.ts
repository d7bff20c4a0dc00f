/**
 * Pipeline benchmark (pnpm bench:pipeline [-- --tokens N]): stage peers are separate Node
 * processes on loopback (test/pipeline/peer-process.ts), the head is this process.
 * - decode tokens/s of synthetic-100m: single process vs 2 and 3 peers
 * - per-hop added latency: stories260K decode ms/token over 5 peers vs 1, divided by the 4 extra hops
 * - aggregate decode tokens/s with 1, 2, 4 and 8 concurrent sessions over 3 peers (synthetic-100m)
 * Prints one JSON object, then a table. Figures from one run on a shared machine.
 */
import { join } from 'node:path'
import { cpuBackend, evenRanges, generate } from '@shardmesh/engine'
import { createMeshPeer } from '@shardmesh/mesh'
import { createTokenizer, syntheticModel, SYNTHETIC_PRESETS } from '@shardmesh/model'
import type { Checkpoint } from '@shardmesh/model'
import { loadModel } from '@shardmesh/model/node'
import { Endpoint, SessionDriver } from '@shardmesh/pipeline'
import { storiesDir } from '../fixtures.ts'
import { spawnPeers } from '../pipeline/processes.ts'

const tokensArg = process.argv.indexOf('--tokens')
const N = tokensArg > 0 ? Number(process.argv[tokensArg + 1]) : 32

async function head (model: Checkpoint): Promise<{ driver: SessionDriver, stop: () => Promise<void> }> {
  const node = await createMeshPeer({ listen: ['/ip4/127.0.0.1/tcp/0'], meshId: `bench-${process.pid}` })
  const driver = new SessionDriver({ endpoint: new Endpoint(node), config: model.config })
  await driver.start()
  return { driver, stop: async () => { await driver.stop(); await node.stop() } }
}

async function singleProcess (model: Checkpoint, prompt: number[]): Promise<number> {
  const stage = await cpuBackend().createStage({ config: model.config, layers: [0, model.config.nLayers], tensors: model.tensors })
  const r = await generate({ sessions: [stage.createSession()], promptTokens: prompt, maxTokens: N, contextLength: model.config.contextLength, stopIds: [] })
  await stage.close()
  return r.timings.decodeTokensPerSecond
}

/** Decode tokens/s of each of `sessions` concurrent sessions and in aggregate, over `peers` processes. */
async function overPeers (model: Checkpoint, spec: string, peers: number, prompt: number[], sessions: number[]): Promise<Array<{ sessions: number, perSession: number, aggregate: number, msPerToken: number }>> {
  const procs = await spawnPeers(spec, evenRanges(model.config.nLayers, peers))
  const h = await head(model)
  try {
    await h.driver.generate({ route: procs.route, promptTokens: prompt, maxTokens: 4, stopIds: [] }) // warm the streams
    const out = []
    for (const s of sessions) {
      const t0 = performance.now()
      const rs = await Promise.all(Array.from({ length: s }, async () => await h.driver.generate({ route: procs.route, promptTokens: prompt, maxTokens: N, stopIds: [] })))
      const wall = (performance.now() - t0) / 1000
      const perSession = rs.reduce((a, r) => a + r.timings.decodeTokensPerSecond, 0) / s
      out.push({ sessions: s, perSession, aggregate: (s * N) / wall, msPerToken: 1000 / perSession })
    }
    return out
  } finally {
    await h.stop()
    await procs.stop()
  }
}

const big = syntheticModel(SYNTHETIC_PRESETS['synthetic-100m'])
const bigPrompt = createTokenizer(big.tokenizer!).encode('Once upon a time')
const single = await singleProcess(big, bigPrompt)
const two = (await overPeers(big, 'synthetic:synthetic-100m', 2, bigPrompt, [1]))[0]
const three = await overPeers(big, 'synthetic:synthetic-100m', 3, bigPrompt, [1, 2, 4, 8])

const storiesPath = join(storiesDir(), 'stories260K.gguf')
const stories = await loadModel(storiesPath)
const sPrompt = createTokenizer(stories.tokenizer!).encode('Once upon a time')
const one5 = (await overPeers(stories, storiesPath, 1, sPrompt, [1]))[0]
const five5 = (await overPeers(stories, storiesPath, 5, sPrompt, [1]))[0]
const perHopMs = (five5.msPerToken - one5.msPerToken) / 4

const result = {
  tokens: N,
  synthetic100m: {
    decodeTokensPerSecond: { singleProcess: single, peers2: two.perSession, peers3: three[0].perSession },
    concurrentOver3Peers: three.map(r => ({ sessions: r.sessions, aggregateTokensPerSecond: r.aggregate, perSessionTokensPerSecond: r.perSession }))
  },
  stories260K: { msPerToken1Peer: one5.msPerToken, msPerToken5Peers: five5.msPerToken, perHopAddedMs: perHopMs }
}
console.log(JSON.stringify(result, null, 2))
const f = (x: number): string => x.toFixed(1)
console.log(`
| figure | value |
| --- | --- |
| synthetic-100m decode tok/s, single process | ${f(single)} |
| synthetic-100m decode tok/s, 2 peers | ${f(two.perSession)} |
| synthetic-100m decode tok/s, 3 peers | ${f(three[0].perSession)} |
${three.map(r => `| synthetic-100m aggregate tok/s, ${r.sessions} session(s) over 3 peers | ${f(r.aggregate)} |`).join('\n')}
| stories260K ms/token, 1 peer / 5 peers | ${one5.msPerToken.toFixed(2)} / ${five5.msPerToken.toFixed(2)} |
| per-hop added latency on loopback (ms) | ${perHopMs.toFixed(2)} |`)
