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
 *
 * Then models of several parts (the synthetic two-tower and encoder–decoder), planned by
 * `component` and `hybrid` over in-process peers with the component protocol: per request,
 * the messages and bytes of the tower passes, of the encoder pass and of handing its memory to
 * the decoder stages, and per decoder token the decoder pipeline's messages and bytes, beside
 * one process running the same model (ms, medians of REPS).
 */
import { join } from 'node:path'
import { cpuBackend, decoderTensorSource, encoderDecoderGenerate, generate } from '@shardmesh/engine'
import type { EncoderComponent } from '@shardmesh/engine'
import { componentConfig, componentNames, componentPartSizes, decoderModelConfig, layerManifest, syntheticEncoderDecoder, syntheticModel, syntheticTwoTower, SYNTHETIC_PRESETS } from '@shardmesh/model'
import type { Checkpoint, ComponentModel, EncoderDecoderConfig, TwoTowerConfig } from '@shardmesh/model'
import { loadModel } from '@shardmesh/model/node'
import { ComponentEndpoint, Endpoint, SessionDriver, StageServer, encodePart, generateEncoderDecoder, partSizes, plan, planComponents } from '@shardmesh/pipeline'
import type { Plan, PlanMember, StrategyName } from '@shardmesh/pipeline'
import { storiesDir } from '../fixtures.ts'
import { localPipeline, startNode } from '../pipeline/local.ts'

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
// --parts-only: only the models of several parts (below)
for (const [name, model] of process.argv.includes('--parts-only') ? [] : models) {
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

// ---------------------------------------------------------------- models of several parts

interface PartRow { model: string, strategy: string, peers: number, stages: string, perRequest: { messages: number, bytes: number, ms: number }, perToken?: { messages: number, bytes: number, ms: number }, single: { ms: number, msPerToken?: number } }

/** In-process peers for `p`'s stages: a component endpoint each, and a cross-attending stage server for decoder stages. */
async function partPeers (model: ComponentModel, p: Plan): Promise<{ ids: Map<string, string>, addrs: (id: string) => string[], components: ComponentEndpoint[], endpoints: Endpoint[], stop: () => Promise<void> }> {
  const backend = cpuBackend({ threads: 1 })
  const ids = new Map<string, string>()
  const addrs = new Map<string, string[]>()
  const components: ComponentEndpoint[] = []
  const endpoints: Endpoint[] = []
  const stops: Array<() => Promise<void>> = []
  for (const s of p.stages) {
    const node = await startNode()
    const c = new ComponentEndpoint({ node, model: model.config.name, load: async (part, span) => await backend.createEncoderStage({ model: model.config, component: part as EncoderComponent, ...span, tensors: model.tensors }) })
    await c.start()
    components.push(c)
    let server: StageServer | undefined
    if (s.component === 'decoder') {
      const config = model.config as EncoderDecoderConfig
      const endpoint = new Endpoint(node)
      endpoints.push(endpoint)
      server = new StageServer({ endpoint, backend, config: decoderModelConfig(config), tensors: decoderTensorSource(model.tensors), crossAttention: { dim: config.encoder.dim }, memory: id => c.memory(id), idleTtlMs: 600_000 })
      await server.start()
      await server.serve(s.range, { units: s.units })
    } else {
      await c.serve(s.component!, s.range, s.units)
    }
    ids.set(s.primary, node.peerId.toString())
    addrs.set(node.peerId.toString(), node.getMultiaddrs().map(String))
    stops.push(async () => { await server?.stop(); await c.stop(); await node.stop() })
  }
  return { ids, addrs: id => addrs.get(id) ?? [], components, endpoints, stop: async () => { for (const f of stops) await f() } }
}

const spanText = (p: Plan): string => p.stages.map(s => `${s.component}:${s.units === undefined ? `[${s.range.join(',')})` : `u[${s.units.join(',')})`}`).join(' ')
const partRows: PartRow[] = []
const partsPlan = (model: ComponentModel, n: number, strategy: 'component' | 'hybrid'): Plan => {
  const sizes = componentPartSizes(model.config)
  return planComponents({ model: model.config.name, components: componentNames(model.config).map(name => ({ name, sizes: sizes[name], passes: name === 'decoder' ? N : 1, shape: componentConfig(model.config, name) })), members: members(n), strategy, standbys: 0 })
}

{
  const model = syntheticTwoTower()
  const config = model.config as TwoTowerConfig
  const text = [3, 17, 42, 99, 150, 7]
  const pixels = Float32Array.from({ length: config.image.imageSize ** 2 * config.image.channels }, (_, i) => Math.sin(i * 0.37))
  const backend = cpuBackend({ threads: 1 })
  const whole = async (): Promise<void> => {
    for (const [c, input] of [['text', { tokens: text }], ['image', { pixels }]] as const) {
      const st = await backend.createEncoderStage({ model: config, component: c, layers: [0, componentConfig(config, c).nLayers], tensors: model.tensors })
      await st.forward(input)
      await st.close()
    }
  }
  await whole()
  const singles: number[] = []
  for (let i = 0; i < REPS; i++) { const t0 = performance.now(); await whole(); singles.push(performance.now() - t0) }
  for (const [n, strategy] of [[2, 'component'], [4, 'component'], [5, 'hybrid']] as const) {
    const p = partsPlan(model, n, strategy)
    const peers = await partPeers(model, p)
    const node = await startNode()
    const head = new ComponentEndpoint({ node, model: config.name })
    await head.start()
    const stages = (c: string): Plan['stages'] => p.stages.filter(s => s.component === c).map(s => ({ ...s, primary: peers.ids.get(s.primary)! }))
    const request = async (): Promise<void> => { await Promise.all([encodePart(head, stages('text'), 'text', { tokens: text }, { addrsOf: peers.addrs }), encodePart(head, stages('image'), 'image', { pixels }, { addrsOf: peers.addrs })]) }
    const counted = (): { messages: number, bytes: number } => [head, ...peers.components].reduce((a, c) => ({ messages: a.messages + c.sent.messages, bytes: a.bytes + c.sent.bytes }), { messages: 0, bytes: 0 })
    await request()
    const before = counted()
    const ms: number[] = []
    for (let i = 0; i < REPS; i++) { const t0 = performance.now(); await request(); ms.push(performance.now() - t0) }
    const after = counted()
    partRows.push({ model: 'two-tower', strategy, peers: n, stages: spanText(p), perRequest: { messages: (after.messages - before.messages) / REPS, bytes: (after.bytes - before.bytes) / REPS, ms: median(ms) }, single: { ms: median(singles) } })
    console.error(JSON.stringify(partRows[partRows.length - 1]))
    await head.stop(); await node.stop(); await peers.stop()
  }
}

{
  const model = syntheticEncoderDecoder()
  const config = model.config as EncoderDecoderConfig
  const input = [5, 61, 9, 120, 33, 2, 77]
  const start = [config.decoder.startId ?? 0]
  const sampling = { temperature: 0, topK: 0, topP: 1, seed: 0 }
  const single = async (maxTokens: number): Promise<number> => { const t0 = performance.now(); await encoderDecoderGenerate({ model, prompt: input, maxTokens, sampling, stopIds: [] }); return performance.now() - t0 }
  await single(N + 1)
  const s1: number[] = []; const sN: number[] = []
  for (let i = 0; i < REPS; i++) { s1.push(await single(1)); sN.push(await single(N + 1)) }
  for (const [n, strategy] of [[3, 'component'], [5, 'hybrid']] as const) {
    const p = partsPlan(model, n, strategy)
    const peers = await partPeers(model, p)
    const node = await startNode()
    const head = new ComponentEndpoint({ node, model: config.name })
    await head.start()
    const headEndpoint = new Endpoint(node)
    const driver = new SessionDriver({ endpoint: headEndpoint, config: decoderModelConfig(config) })
    await driver.start()
    const encoder = p.stages.filter(s => s.component === 'encoder').map(s => ({ ...s, primary: peers.ids.get(s.primary)! }))
    const decoder = p.stages.filter(s => s.component === 'decoder').map(s => { const id = peers.ids.get(s.primary)!; return { peerId: id, addrs: peers.addrs(id), layers: s.range, ...(s.units === undefined ? {} : { units: s.units }) } })
    const counted = (): { messages: number, bytes: number } => [head, ...peers.components].reduce((a, c) => ({ messages: a.messages + c.sent.messages, bytes: a.bytes + c.sent.bytes }), { messages: 0, bytes: 0 })
    const pipeline = (): { messages: number, bytes: number } => [headEndpoint, ...peers.endpoints].reduce((a, e) => ({ messages: a.messages + e.sent.messages, bytes: a.bytes + e.sent.bytes }), { messages: 0, bytes: 0 })
    const run = async (maxTokens: number): Promise<{ ms: number, parts: { messages: number, bytes: number }, pipe: { messages: number, bytes: number } }> => {
      const [c0, p0] = [counted(), pipeline()]
      const t0 = performance.now()
      const r = await generateEncoderDecoder({ components: head, driver, encoder, decoder, addrsOf: peers.addrs, input, start, maxTokens, sampling, stopIds: [] })
      if (r.tokens.length !== maxTokens) throw new Error(`${r.tokens.length} tokens, not ${maxTokens}`)
      const [c1, p1] = [counted(), pipeline()]
      return { ms: performance.now() - t0, parts: { messages: c1.messages - c0.messages, bytes: c1.bytes - c0.bytes }, pipe: { messages: p1.messages - p0.messages, bytes: p1.bytes - p0.bytes } }
    }
    await run(N + 1)
    const ones: Array<Awaited<ReturnType<typeof run>>> = []; const longs: typeof ones = []
    for (let i = 0; i < REPS; i++) { ones.push(await run(1)); longs.push(await run(N + 1)) }
    const one = ones[ones.length - 1]
    partRows.push({
      model: 'encoder-decoder',
      strategy,
      peers: n,
      stages: spanText(p),
      perRequest: { messages: one.parts.messages, bytes: one.parts.bytes, ms: median(ones.map(o => o.ms)) },
      perToken: { messages: median(longs.map((l, i) => (l.pipe.messages - ones[i].pipe.messages) / N)), bytes: median(longs.map((l, i) => (l.pipe.bytes - ones[i].pipe.bytes) / N)), ms: median(longs.map((l, i) => (l.ms - ones[i].ms) / N)) },
      single: { ms: median(s1), msPerToken: median(sN.map((x, i) => (x - s1[i]) / N)) }
    })
    console.error(JSON.stringify(partRows[partRows.length - 1]))
    await driver.stop(); await head.stop(); await node.stop(); await peers.stop()
  }
}
console.log(JSON.stringify({ parts: partRows }))
console.log('\n| model | strategy | peers | stages | per request: messages / bytes / ms (the part passes; for the encoder–decoder the encoder pass, its memory to the decoder stages and the first token) | per decoder token: messages / bytes / ms | one process: ms per request / per token |')
console.log('| --- | --- | --- | --- | --- | --- | --- |')
for (const r of partRows) console.log(`| ${r.model} | ${r.strategy} | ${r.peers} | ${r.stages} | ${r.perRequest.messages} / ${Math.round(r.perRequest.bytes)} / ${r.perRequest.ms.toFixed(2)} | ${r.perToken === undefined ? '—' : `${r.perToken.messages.toFixed(1)} / ${Math.round(r.perToken.bytes)} / ${r.perToken.ms.toFixed(2)}`} | ${r.single.ms.toFixed(2)}${r.single.msPerToken === undefined ? '' : ` / ${r.single.msPerToken.toFixed(2)}`} |`)
