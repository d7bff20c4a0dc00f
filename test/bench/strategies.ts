/**
 * Per-token cost of each sharding strategy against layer sharding on the same model and the
 * same peers (pnpm bench:strategies [-- --tokens N]).
 *
 * Stage peers are real libp2p nodes with stage servers, all in this process (TCP on
 * loopback): they share one thread, so a decode step costs the whole model's compute plus
 * every hop, and the difference between two strategies over the same number of peers is what
 * their routes add. For each model and peer count it plans with `layer` and with
 * `attention_feedforward` (identical members), and measures per decode token, from the
 * endpoints' own counters: messages (hops) and bytes sent between peers, and decode ms/token
 * (median of REPS runs of N greedy tokens after a warm-up run). Bytes and hops per token are
 * the difference between a run of N + 1 tokens and one of 1 token, over N.
 */
import { join } from 'node:path'
import { cpuBackend, generate } from '@shardmesh/engine'
import { layerManifest, syntheticModel, SYNTHETIC_PRESETS } from '@shardmesh/model'
import type { Checkpoint } from '@shardmesh/model'
import { loadModel } from '@shardmesh/model/node'
import { partSizes, plan } from '@shardmesh/pipeline'
import type { PlanMember, StrategyName } from '@shardmesh/pipeline'
import { storiesDir } from '../fixtures.ts'
import { localPipeline } from '../pipeline/local.ts'

const tokensArg = process.argv.indexOf('--tokens')
const N = tokensArg > 0 ? Number(process.argv[tokensArg + 1]) : 32
const REPS = 3
const PROMPT = [1, 403, 411, 2080, 1790, 29889]

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const members = (n: number): PlanMember[] => Array.from({ length: n }, (_, i) => ({ peerId: `p${i}`, capabilities: { runtime: { name: 'node', version: '22' }, backend: { kind: 'cpu' }, memoryBytes: 0 } }))

interface Row { model: string, strategy: StrategyName, peers: number, stages: string, hopsPerToken: number, bytesPerToken: number, msPerToken: number, vsSingle: number }

async function singleMs (model: Checkpoint, prompt: number[]): Promise<number> {
  const stage = await cpuBackend({ threads: 1 }).createStage({ config: model.config, layers: [0, model.config.nLayers], tensors: model.tensors })
  const run = async (): Promise<number> => (await generate({ sessions: [stage.createSession()], promptTokens: prompt, maxTokens: N + 1, contextLength: model.config.contextLength, stopIds: [] })).timings.decodeTokensPerSecond
  await run()
  const rates = []
  for (let i = 0; i < REPS; i++) rates.push(await run())
  await stage.close()
  return 1000 / median(rates)
}

async function measure (name: string, model: Checkpoint, strategy: StrategyName, peers: number, single: number): Promise<Row> {
  const p = plan({ config: model.config, sizes: partSizes(layerManifest(model)), members: members(peers), strategy, maxStages: peers })
  const pipe = await localPipeline(model, p.stages.map(s => ({ layers: s.range, units: s.units })), { server: { idleTtlMs: 600_000 } })
  try {
    const prompt = PROMPT.map(t => t % model.config.vocabSize)
    const endpoints = [pipe.headEndpoint, ...pipe.endpoints]
    const counted = (): { messages: number, bytes: number } => endpoints.reduce((a, e) => ({ messages: a.messages + e.sent.messages, bytes: a.bytes + e.sent.bytes }), { messages: 0, bytes: 0 })
    const run = async (maxTokens: number): Promise<{ ms: number, messages: number, bytes: number }> => {
      const before = counted()
      const t0 = performance.now()
      const r = await pipe.driver.generate({ route: pipe.route, promptTokens: prompt, maxTokens, stopIds: [] })
      const ms = performance.now() - t0
      if (r.tokens.length !== maxTokens) throw new Error(`${strategy} gave ${r.tokens.length} tokens, not ${maxTokens}`)
      const after = counted()
      return { ms, messages: after.messages - before.messages, bytes: after.bytes - before.bytes }
    }
    await run(N + 1) // warm-up
    const ones: Array<{ ms: number, messages: number, bytes: number }> = []
    const longs: typeof ones = []
    for (let i = 0; i < REPS; i++) { ones.push(await run(1)); longs.push(await run(N + 1)) }
    const per = (k: 'ms' | 'messages' | 'bytes'): number => median(longs.map((l, i) => (l[k] - ones[i][k]) / N))
    const stages = p.stages.map(s => s.units === undefined ? `[${s.range.join(',')})` : `u[${s.units.join(',')})`).join(' ')
    const msPerToken = per('ms')
    return { model: name, strategy, peers, stages, hopsPerToken: per('messages'), bytesPerToken: per('bytes'), msPerToken, vsSingle: msPerToken / single }
  } finally {
    await pipe.stop()
  }
}

const models: Array<[string, Checkpoint]> = [
  ['stories260K', await loadModel(join(storiesDir(), 'stories260K.gguf'))],
  ['synthetic-100m', syntheticModel(SYNTHETIC_PRESETS['synthetic-100m'])]
]
const rows: Row[] = []
for (const [name, model] of models) {
  const single = await singleMs(model, PROMPT.map(t => t % model.config.vocabSize))
  console.error(`${name}: single process, 1 thread: ${single.toFixed(2)} ms/token`)
  const counts = name === 'stories260K' ? [2, 3, 4, 10] : [2, 3, 4]
  for (const peers of counts) {
    for (const strategy of ['layer', 'attention_feedforward'] as const) {
      if (strategy === 'layer' && peers > model.config.nLayers) continue
      const row = await measure(name, model, strategy, peers, single)
      rows.push(row)
      console.error(JSON.stringify(row))
    }
  }
}
console.log(JSON.stringify({ tokens: N, reps: REPS, rows }))
console.log('\n| model | strategy | peers | stages | hops/token | bytes/token | decode ms/token | × single process |')
console.log('| --- | --- | --- | --- | --- | --- | --- | --- |')
for (const r of rows) console.log(`| ${r.model} | ${r.strategy} | ${r.peers} | ${r.stages} | ${r.hopsPerToken.toFixed(1)} | ${Math.round(r.bytesPerToken)} | ${r.msPerToken.toFixed(2)} | ${r.vsSingle.toFixed(2)} |`)
process.exit(0)
