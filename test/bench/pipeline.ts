/**
 * Pipeline benchmark (pnpm bench:pipeline [-- --tokens N]): stage peers are separate Node
 * processes on loopback (test/pipeline/peer-process.ts, one matmul thread each), the head is
 * this process.
 * - decode tokens/s of synthetic-100m: single process (1 and 2 threads) vs 2 and 3 peers, the
 *   layers split by the planner's `balanced` strategy over identical peers (equal weight bytes
 *   per stage, the LM head counted on the last)
 * - aggregate tokens/s with 1, 2, 4 and 8 concurrent sessions over 2 and 3 peers, each against
 *   the best one process does with the same sessions: 2 threads (the CLI default on 2 cores),
 *   all sessions stepped together through `forwardBatch` (each weight read once per step for
 *   all of them), warmed first like the peers. Both sides count every session's tokens over
 *   the wall time from the first prefill to the last token. Medians of REPS runs.
 * - per-hop added latency: stories260K decode ms/token over 5 peers vs 1, divided by the
 *   4 extra hops; steady state (peers warmed up), median of HOP_RUNS runs of HOP_TOKENS tokens
 * - time to first token of a LONG_PROMPT-token prompt: single process vs 2 peers with the
 *   prompt in one frame vs in chunks (PREFILL_CHUNK), median of 3
 * Prints the throughput comparison (JSON, then a table) as soon as it is measured, then the
 * whole result as one JSON object and a table. `--throughput-only` stops after the first
 * part. Figures from one run on a shared machine.
 */
import { join } from 'node:path'
import { cpuBackend, evenRanges, generate } from '@shardmesh/engine'
import { createMeshPeer } from '@shardmesh/mesh'
import { createTokenizer, layerManifest, syntheticModel, SYNTHETIC_PRESETS } from '@shardmesh/model'
import type { Checkpoint } from '@shardmesh/model'
import { loadModel } from '@shardmesh/model/node'
import { Endpoint, PREFILL_CHUNK, SessionDriver, partSizes, plan } from '@shardmesh/pipeline'
import { storiesDir } from '../fixtures.ts'
import { spawnPeers } from '../pipeline/processes.ts'

const throughputOnly = process.argv.includes('--throughput-only')
const tokensArg = process.argv.indexOf('--tokens')
const N = tokensArg > 0 ? Number(process.argv[tokensArg + 1]) : 32
const HOP_TOKENS = 200
const HOP_RUNS = 5
const SESSIONS = [1, 2, 4, 8]
/** Runs of each concurrent-sessions figure (the median is reported). */
const REPS = 3
/** Matmul threads of the single-process baseline: availableThreads() on this 2-core machine, the CLI default. */
const BASELINE_THREADS = 2
const LONG_PROMPT = 512

async function head (model: Checkpoint, prefillChunk?: number): Promise<{ driver: SessionDriver, stop: () => Promise<void> }> {
  const node = await createMeshPeer({ listen: ['/ip4/127.0.0.1/tcp/0'], meshId: `bench-${process.pid}` })
  const driver = new SessionDriver({ endpoint: new Endpoint(node), config: model.config, prefillChunk })
  await driver.start()
  return { driver, stop: async () => { await driver.stop(); await node.stop() } }
}

async function singleProcess (model: Checkpoint, prompt: number[], threads: number): Promise<number> {
  const stage = await cpuBackend({ threads }).createStage({ config: model.config, layers: [0, model.config.nLayers], tensors: model.tensors })
  const run = async (): Promise<number> => (await generate({ sessions: [stage.createSession()], promptTokens: prompt, maxTokens: N, contextLength: model.config.contextLength, stopIds: [] })).timings.decodeTokensPerSecond
  await run() // warm, like the peers
  const rates = []
  for (let i = 0; i < REPS; i++) rates.push(await run())
  await stage.close()
  return median(rates)
}

/**
 * The single-process baseline for `s` concurrent sessions: one stage with all layers on
 * `threads` threads; every session's prompt in one batched prefill, then N - 1 batched
 * decode steps (one `forwardBatch` of s rows each). Aggregate = s·N tokens over the wall
 * time, as for the peers. Warmed with one round first; median of REPS rounds per count.
 */
async function singleProcessBatched (model: Checkpoint, prompt: number[], sessions: number[], threads: number): Promise<Array<{ sessions: number, aggregate: number }>> {
  const stage = await cpuBackend({ threads }).createStage({ config: model.config, layers: [0, model.config.nLayers], tensors: model.tensors })
  const round = async (s: number, tokens: number): Promise<number> => {
    const all = Array.from({ length: s }, () => stage.createSession())
    const t0 = performance.now()
    let outs = await stage.forwardBatch(all.map(session => ({ session, input: { position: 0, tokens: prompt }, options: { sample: {} } })))
    for (let i = 1; i < tokens; i++) {
      outs = await stage.forwardBatch(all.map((session, j) => {
        const r = outs[j]
        if (r.status === 'rejected') throw r.reason
        return { session, input: { position: prompt.length + i - 1, tokens: [r.value.token!] }, options: { sample: {} } }
      }))
    }
    const wall = (performance.now() - t0) / 1000
    for (const r of outs) if (r.status === 'rejected') throw r.reason
    return (s * tokens) / wall
  }
  try {
    await round(1, 4)
    const out = []
    for (const s of sessions) {
      const rates = []
      for (let i = 0; i < REPS; i++) rates.push(await round(s, N))
      out.push({ sessions: s, aggregate: median(rates) })
    }
    return out
  } finally {
    await stage.close()
  }
}

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 === 1 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

/** Decode tokens/s of each of `sessions` concurrent sessions and in aggregate, over `peers` processes. */
async function overPeers (model: Checkpoint, spec: string, ranges: Array<[number, number]>, prompt: number[], sessions: number[], warmTokens = 4, reps = REPS): Promise<Array<{ sessions: number, perSession: number, aggregate: number, msPerToken: number }>> {
  const procs = await spawnPeers(spec, ranges)
  const h = await head(model)
  try {
    await h.driver.generate({ route: procs.route, promptTokens: prompt, maxTokens: warmTokens, stopIds: [] }) // warm the streams
    const out = []
    for (const s of sessions) {
      const runs = []
      for (let rep = 0; rep < reps; rep++) {
        const t0 = performance.now()
        const rs = await Promise.all(Array.from({ length: s }, async () => await h.driver.generate({ route: procs.route, promptTokens: prompt, maxTokens: N, stopIds: [] })))
        const wall = (performance.now() - t0) / 1000
        const perSession = rs.reduce((a, r) => a + r.timings.decodeTokensPerSecond, 0) / s
        runs.push({ sessions: s, perSession, aggregate: (s * N) / wall, msPerToken: 1000 / perSession })
      }
      out.push(runs.sort((a, b) => a.aggregate - b.aggregate)[runs.length >> 1])
    }
    return out
  } finally {
    await h.stop()
    await procs.stop()
  }
}

/** Steady-state decode ms/token of stories260K over `peers` processes: median of HOP_RUNS runs after a warm-up. */
async function storiesMsPerToken (model: Checkpoint, path: string, peers: number, prompt: number[]): Promise<number> {
  const runs = await overPeers(model, path, evenRanges(model.config.nLayers, peers), prompt, Array.from({ length: HOP_RUNS }, () => 1), HOP_TOKENS, 1)
  return median(runs.map(r => r.msPerToken))
}

/** The `balanced` plan's ranges over `peers` identical Node CPU peers. */
function balancedRanges (model: Checkpoint, peers: number): Array<[number, number]> {
  const members = Array.from({ length: peers }, (_, i) => ({ peerId: `p${i}`, capabilities: { runtime: { name: 'node', version: process.versions.node }, backend: { kind: 'cpu' as const }, memoryBytes: 0 } }))
  return plan({ config: model.config, sizes: partSizes(layerManifest(model)), members, strategy: 'balanced' }).stages.map(s => s.range)
}

/** Median ms to the first token (open + prefill) of `prompt`, over `ranges` peers, for each prefill chunk size. */
async function firstTokenMs (model: Checkpoint, spec: string, ranges: Array<[number, number]>, prompt: number[], chunks: number[]): Promise<number[]> {
  const procs = await spawnPeers(spec, ranges)
  try {
    const out = []
    for (const chunk of chunks) {
      const h = await head(model, chunk)
      const ms = []
      for (let i = 0; i < 3; i++) ms.push((await h.driver.generate({ route: procs.route, promptTokens: prompt, maxTokens: 1, stopIds: [] })).timings.prefillMs)
      await h.stop()
      out.push(median(ms))
    }
    return out
  } finally {
    await procs.stop()
  }
}

const big = syntheticModel(SYNTHETIC_PRESETS['synthetic-100m'])
const bigPrompt = createTokenizer(big.tokenizer!).encode('Once upon a time')
const single = await singleProcess(big, bigPrompt, 1)
const single2 = await singleProcess(big, bigPrompt, 2)
const ranges2 = balancedRanges(big, 2)
const ranges3 = balancedRanges(big, 3)
const batched = await singleProcessBatched(big, bigPrompt, SESSIONS, BASELINE_THREADS)
const two = await overPeers(big, 'synthetic:synthetic-100m', ranges2, bigPrompt, SESSIONS)
const three = await overPeers(big, 'synthetic:synthetic-100m', ranges3, bigPrompt, SESSIONS)
/** The single-process batched aggregate with the same number of sessions. */
const baselineOf = (sessions: number): number => batched.find(b => b.sessions === sessions)!.aggregate
const f = (x: number): string => x.toFixed(1)
const x = (a: number, b: number): string => (a / b).toFixed(2) + '×'
const concurrent = (rows: typeof two): object[] => rows.map(r => ({ sessions: r.sessions, aggregateTokensPerSecond: r.aggregate, perSessionTokensPerSecond: r.perSession, singleProcessBatchedTokensPerSecond: baselineOf(r.sessions), vsSingleProcessBatched: r.aggregate / baselineOf(r.sessions) }))
const synthetic100m = {
  ranges: { peers2: ranges2, peers3: ranges3 },
  decodeTokensPerSecond: { singleProcess: single, singleProcess2Threads: single2, peers2: two[0].perSession, peers3: three[0].perSession },
  singleProcessBatched: { threads: BASELINE_THREADS, aggregateTokensPerSecond: batched },
  concurrentOver2Peers: concurrent(two),
  concurrentOver3Peers: concurrent(three)
}
const rows = (peers: number, rs: typeof two): string => `| aggregate over ${peers} peers (1 thread each), ${SESSIONS.join(' / ')} sessions | ${rs.map(r => f(r.aggregate)).join(' / ')} | ${rs.map(r => x(r.aggregate, baselineOf(r.sessions))).join(' / ')} |`
console.log(JSON.stringify({ tokens: N, reps: REPS, synthetic100m }))
console.log(`
synthetic-100m F32, ${N} tokens per session, medians of ${REPS} runs; × = over the single process with
${BASELINE_THREADS} threads and the same number of sessions batched (first row), in this run.

| figure | tok/s | × |
| --- | --- | --- |
| single process, ${BASELINE_THREADS} threads, ${SESSIONS.join(' / ')} sessions batched (aggregate) | ${batched.map(b => f(b.aggregate)).join(' / ')} | 1 |
| single process, 1 session, decode only, 1 / 2 threads | ${f(single)} / ${f(single2)} | |
| 1 session, decode only, 2 peers ${JSON.stringify(ranges2)} / 3 peers ${JSON.stringify(ranges3)} | ${f(two[0].perSession)} / ${f(three[0].perSession)} | ${x(two[0].perSession, single2)} / ${x(three[0].perSession, single2)} over 2 threads |
${rows(2, two)}
${rows(3, three)}
`)
if (throughputOnly) process.exit(0)

const longPrompt = [1, ...Array.from({ length: LONG_PROMPT - 1 }, (_, i) => 300 + (i * 7919) % 20000)]
const singleFirst = await (async () => {
  const stage = await cpuBackend({ threads: BASELINE_THREADS }).createStage({ config: big.config, layers: [0, big.config.nLayers], tensors: big.tensors })
  const ms = []
  for (let i = 0; i < 3; i++) ms.push((await generate({ sessions: [stage.createSession()], promptTokens: longPrompt, maxTokens: 1, contextLength: big.config.contextLength, stopIds: [] })).timings.prefillMs)
  await stage.close()
  return median(ms)
})()
const [oneFrameFirst, chunkedFirst] = await firstTokenMs(big, 'synthetic:synthetic-100m', ranges2, longPrompt, [Infinity, PREFILL_CHUNK])

const storiesPath = join(storiesDir(), 'stories260K.gguf')
const stories = await loadModel(storiesPath)
const sPrompt = createTokenizer(stories.tokenizer!).encode('Once upon a time')
const ms1 = await storiesMsPerToken(stories, storiesPath, 1, sPrompt)
const ms5 = await storiesMsPerToken(stories, storiesPath, 5, sPrompt)
const perHopMs = (ms5 - ms1) / 4
const bestOf4Plus = (rows: typeof two): { sessions: number, aggregate: number } => rows.filter(r => r.sessions >= 4).reduce((a, b) => b.aggregate / baselineOf(b.sessions) > a.aggregate / baselineOf(a.sessions) ? b : a)
const target = bestOf4Plus(two)

const result = {
  tokens: N,
  reps: REPS,
  synthetic100m,
  firstTokenMs: { promptTokens: LONG_PROMPT, singleProcessThreads: BASELINE_THREADS, singleProcess: singleFirst, peers2OneFrame: oneFrameFirst, peers2Chunked: chunkedFirst, chunk: PREFILL_CHUNK },
  stories260K: { tokens: HOP_TOKENS, runs: HOP_RUNS, msPerToken1Peer: ms1, msPerToken5Peers: ms5, perHopAddedMs: perHopMs },
  targets: {
    aggregate2PeersAtLeast4SessionsVsSingleProcessBatched: { sessions: target.sessions, ratio: target.aggregate / baselineOf(target.sessions), met: target.aggregate / baselineOf(target.sessions) >= 1.5 },
    perHopUnder1Ms: { ms: perHopMs, met: perHopMs < 1 }
  }
}
console.log(JSON.stringify(result, null, 2))
console.log(`
| figure | value |
| --- | --- |
| time to first token, ${LONG_PROMPT}-token prompt (ms): single process (${BASELINE_THREADS} threads) / 2 peers, one frame / 2 peers, chunks of ${PREFILL_CHUNK} | ${singleFirst.toFixed(0)} / ${oneFrameFirst.toFixed(0)} / ${chunkedFirst.toFixed(0)} |
| stories260K ms/token, 1 peer / 5 peers (median of ${HOP_RUNS} × ${HOP_TOKENS} tokens) | ${ms1.toFixed(2)} / ${ms5.toFixed(2)} |
| per-hop added latency on loopback (ms) | ${perHopMs.toFixed(2)} |`)
