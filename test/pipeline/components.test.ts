/**
 * Models of several parts over separate processes (strategies component and hybrid): a
 * two-tower model's text and image towers and an encoder–decoder's encoder and decoder each
 * run on their own peers, split as the planner says, and give the single-process output
 * exactly — the towers' embeddings bit for bit, the decoder's tokens — and survive a killed
 * stage: a tower or encoder pass moves to a standby, a decoder session is recovered on one
 * after it got the encoder memory.
 */
import type { ChildProcess } from 'node:child_process'
import { afterEach, describe, expect, it } from 'vitest'
import { cpuBackend, encoderDecoderGenerate, fuseTowers } from '@shardmesh/engine'
import type { EncoderComponent } from '@shardmesh/engine'
import { componentConfig, componentNames, componentPartSizes, decoderModelConfig, syntheticEncoderDecoder, syntheticTwoTower } from '@shardmesh/model'
import type { ComponentModel, EncoderDecoderConfig, TwoTowerConfig } from '@shardmesh/model'
import { ComponentEndpoint, Endpoint, SessionDriver, encodePart, generateEncoderDecoder, planComponents } from '@shardmesh/pipeline'
import type { Plan, PlanStage, Repair } from '@shardmesh/pipeline'
import type { RouteHop } from '@shardmesh/protocol'
import { startNode } from './local.ts'
import { spawnReady, stopChild } from './processes.ts'

const towers = syntheticTwoTower()
const encdec = syntheticEncoderDecoder()
const tower = towers.config as TwoTowerConfig
const ed = encdec.config as EncoderDecoderConfig
const TEXT = [3, 17, 42, 99, 150, 7]
const PIXELS = Float32Array.from({ length: tower.image.imageSize ** 2 * tower.image.channels }, (_, i) => Math.sin(i * 0.37))
const INPUT = [5, 61, 9, 120, 33, 2, 77]

interface Proc { hop: RouteHop & { component: string, backend: string }, child: ChildProcess }
/** The stage processes compute on the CPU, or on WebGPU (SwiftShader here). */
type Compute = 'cpu' | 'webgpu'
const WEBGPU_ENV = { SHARDMESH_COMPONENT_BACKEND: 'webgpu', VK_ICD_FILENAMES: process.env.VK_ICD_FILENAMES ?? '/usr/lib/chromium/vk_swiftshader_icd.json' }

describe('models of several parts over separate processes', () => {
  const cleanup: Array<() => Promise<void>> = []
  afterEach(async () => { for (const f of cleanup.splice(0).reverse()) await f().catch(() => {}) })

  /** One process per stage of `stages` (each on its own part and span). */
  async function spawnStages (kind: 'two_tower' | 'encoder_decoder', stages: Array<Pick<PlanStage, 'component' | 'range' | 'units'>>, compute: Compute): Promise<Proc[]> {
    const children: ChildProcess[] = []
    cleanup.push(async () => { await Promise.all(children.map(stopChild)) })
    return await Promise.all(stages.map(async s => {
      const { info, child } = await spawnReady<Proc['hop']>('test/pipeline/component-peer.ts', [kind, s.component!, String(s.range[0]), String(s.range[1]), ...(s.units === undefined ? [] : [s.units.join(',')])], children, compute === 'webgpu' ? WEBGPU_ENV : {})
      return { hop: info, child }
    }))
  }

  async function head (model: ComponentModel): Promise<{ components: ComponentEndpoint, node: Awaited<ReturnType<typeof startNode>> }> {
    const node = await startNode()
    const components = new ComponentEndpoint({ node, model: model.config.name })
    await components.start()
    cleanup.push(async () => { await components.stop(); await node.stop() })
    return { components, node }
  }

  /** The plan for `n` members, its stages' primaries (and standbys) replaced by real processes. */
  async function planned (kind: 'two_tower' | 'encoder_decoder', model: ComponentModel, n: number, strategy: 'component' | 'hybrid', standbys = 0, compute: Compute = 'cpu'): Promise<{ plan: Plan, procs: Map<string, Proc> }> {
    const sizes = componentPartSizes(model.config)
    const members = Array.from({ length: n + standbys }, (_, i) => ({ peerId: `m${i}`, capabilities: { runtime: { name: 'node', version: '22' }, backend: { kind: 'cpu' as const }, memoryBytes: 0 } }))
    const plan = planComponents({
      model: model.config.name,
      components: componentNames(model.config).map(name => ({ name, sizes: sizes[name], passes: name === 'decoder' ? 24 : 1, shape: componentConfig(model.config, name) })),
      members,
      strategy,
      maxStages: n,
      standbys: standbys > 0 ? 1 : 0
    })
    const ids = [...new Set(plan.stages.flatMap(s => [s.primary, ...s.standbys]))]
    // a standby serves the stage it stands by for
    const stageOf = (id: string): PlanStage => plan.stages.find(s => s.primary === id) ?? plan.stages.find(s => s.standbys.includes(id))!
    const spawned = await spawnStages(kind, ids.map(stageOf), compute)
    for (const p of spawned) expect(p.hop.backend).toBe(compute)
    const procs = new Map(ids.map((id, i) => [id, spawned[i]]))
    const real = (id: string): string => procs.get(id)!.hop.peerId
    return { plan: { ...plan, stages: plan.stages.map(s => ({ ...s, primary: real(s.primary), standbys: s.standbys.map(real) })) }, procs }
  }
  const addrsOf = (procs: Map<string, Proc>) => (peerId: string): string[] => [...procs.values()].find(p => p.hop.peerId === peerId)!.hop.addrs

  async function towerReference (): Promise<{ text: Float32Array, image: Float32Array }> {
    const backend = cpuBackend()
    const run = async (component: EncoderComponent, input: { tokens: number[] } | { pixels: Float32Array }): Promise<Float32Array> => {
      const n = componentConfig(tower, component).nLayers
      const stage = await backend.createEncoderStage({ model: tower, component, layers: [0, n], tensors: towers.tensors })
      const out = await stage.forward(input)
      await stage.close()
      if (!('embedding' in out)) throw new Error('a whole tower gives an embedding')
      return out.embedding
    }
    return { text: await run('text', { tokens: TEXT }), image: await run('image', { pixels: PIXELS }) }
  }

  it.each([[2, 'component'], [5, 'hybrid']] as const)('two towers over %i processes (%s): the embeddings and their similarity equal one process\'s bit for bit', async (n, strategy) => {
    const want = await towerReference()
    const { plan, procs } = await planned('two_tower', towers, n, strategy)
    expect(new Set(plan.stages.map(s => s.component))).toEqual(new Set(['text', 'image']))
    if (strategy === 'hybrid') expect(plan.stages.some(s => s.units !== undefined)).toBe(true) // 5 peers on 3 + 3 layers: a part split inside blocks
    const { components } = await head(towers)
    const stagesOf = (c: string): PlanStage[] => plan.stages.filter(s => s.component === c)
    const [text, image] = await Promise.all([
      encodePart(components, stagesOf('text'), 'text', { tokens: TEXT }, { addrsOf: addrsOf(procs) }),
      encodePart(components, stagesOf('image'), 'image', { pixels: PIXELS }, { addrsOf: addrsOf(procs) })
    ])
    expect('embedding' in text.output && text.output.embedding).toEqual(want.text)
    expect('embedding' in image.output && image.output.embedding).toEqual(want.image)
    expect(fuseTowers((text.output as { embedding: Float32Array }).embedding, (image.output as { embedding: Float32Array }).embedding)).toEqual(fuseTowers(want.text, want.image))
    expect(text.recoveries + image.recoveries).toBe(0)
  })

  it('a tower pass whose first stage was killed moves to its standby: the same embedding', async () => {
    const want = await towerReference()
    const { plan, procs } = await planned('two_tower', towers, 4, 'component', 4)
    const textStages = plan.stages.filter(s => s.component === 'text')
    expect(textStages.every(s => s.standbys.length === 1)).toBe(true)
    const victim = [...procs.values()].find(p => p.hop.peerId === textStages[0].primary)!
    victim.child.kill('SIGKILL')
    await new Promise(resolve => victim.child.once('exit', resolve))
    const { components } = await head(towers)
    const got = await encodePart(components, textStages, 'text', { tokens: TEXT }, { addrsOf: addrsOf(procs), timeoutMs: 20_000 })
    expect(got.recoveries).toBeGreaterThanOrEqual(1)
    expect(got.route[0].peerId).toBe(textStages[0].standbys[0])
    expect('embedding' in got.output && got.output.embedding).toEqual(want.text)
  })

  it.each([[3, 'component'], [5, 'hybrid']] as const)('an encoder–decoder over %i processes (%s): the encoder pass once, its memory to every decoder stage, the single-process tokens', async (n, strategy) => {
    const { plan, procs } = await planned('encoder_decoder', encdec, n, strategy)
    const { node, components } = await head(encdec)
    const driver = new SessionDriver({ endpoint: new Endpoint(node), config: decoderModelConfig(ed) })
    await driver.start()
    cleanup.push(async () => { await driver.stop() })
    const decoder: RouteHop[] = plan.stages.filter(s => s.component === 'decoder').map(s => ({ peerId: s.primary, addrs: addrsOf(procs)(s.primary), layers: s.range, ...(s.units === undefined ? {} : { units: s.units }) }))
    for (const sampling of [{ temperature: 0, topK: 0, topP: 1, seed: 0 }, { temperature: 0.9, topK: 0, topP: 0.95, seed: 5 }]) {
      const want = await encoderDecoderGenerate({ model: encdec, prompt: INPUT, maxTokens: 24, sampling })
      const got = await generateEncoderDecoder({ components, driver, encoder: plan.stages.filter(s => s.component === 'encoder'), decoder, addrsOf: addrsOf(procs), input: INPUT, start: [ed.decoder.startId ?? 0], maxTokens: 24, sampling, stopIds: ed.decoder.stopIds ?? [] })
      expect(want.tokens.length).toBeGreaterThan(0)
      expect(got.tokens).toEqual(want.tokens)
      expect(got.memoryRows).toBe(INPUT.length)
    }
  })

  it('a decoder stage killed mid-generation: the session moves to its standby, which gets the memory first; the same tokens', async () => {
    const { plan, procs } = await planned('encoder_decoder', encdec, 3, 'component', 3)
    const { node, components } = await head(encdec)
    const driver = new SessionDriver({ endpoint: new Endpoint(node), config: decoderModelConfig(ed) })
    await driver.start()
    cleanup.push(async () => { await driver.stop() })
    const decoderStages = plan.stages.filter(s => s.component === 'decoder')
    expect(decoderStages.length).toBeGreaterThanOrEqual(2)
    expect(decoderStages.every(s => s.standbys.length === 1)).toBe(true)
    const hop = (id: string, s: PlanStage): RouteHop => ({ peerId: id, addrs: addrsOf(procs)(id), layers: s.range, ...(s.units === undefined ? {} : { units: s.units }) })
    const decoder = decoderStages.map(s => hop(s.primary, s))
    const standbys = decoderStages.map(s => hop(s.standbys[0], s))
    const repair: Repair = async ({ route, lost }) => ({ route: route.map((h, i) => lost.includes(h.peerId) ? standbys[i] : h), path: 'replay', strategy: 'failover' })
    const sampling = { temperature: 0.9, topK: 0, topP: 0.95, seed: 11 }
    const want = await encoderDecoderGenerate({ model: encdec, prompt: INPUT, maxTokens: 24, sampling })
    const victim = [...procs.values()].find(p => p.hop.peerId === decoderStages[1].primary)!
    let seen = 0
    const got = await generateEncoderDecoder({
      components, driver, encoder: plan.stages.filter(s => s.component === 'encoder'), decoder, addrsOf: addrsOf(procs), input: INPUT, start: [ed.decoder.startId ?? 0], maxTokens: 24, sampling, stopIds: ed.decoder.stopIds ?? [], repair,
      onToken: () => { if (++seen === 8) victim.child.kill('SIGKILL') }
    })
    expect(want.tokens.length).toBeGreaterThan(8)
    expect(got.tokens).toEqual(want.tokens)
    expect(got.recoveries).toHaveLength(1)
    expect(got.recoveries[0]).toMatchObject({ ok: true, path: 'replay', failed: [decoderStages[1].primary] })
  })

  it('on WebGPU peers: two towers give the CPU embeddings within 1e-5 of their largest value, an encoder–decoder the CPU tokens', async () => {
    const want = await towerReference()
    const towersPlan = await planned('two_tower', towers, 3, 'component', 0, 'webgpu')
    const { components } = await head(towers)
    const stagesOf = (c: string): PlanStage[] => towersPlan.plan.stages.filter(s => s.component === c)
    for (const [c, input, ref] of [['text', { tokens: TEXT }, want.text], ['image', { pixels: PIXELS }, want.image]] as const) {
      const got = await encodePart(components, stagesOf(c), c, input, { addrsOf: addrsOf(towersPlan.procs) })
      if (!('embedding' in got.output)) throw new Error('a tower gives an embedding')
      const largest = Math.max(1, ...Array.from(ref, Math.abs))
      const worst = Math.max(...Array.from(got.output.embedding, (x, i) => Math.abs(x - ref[i])))
      expect(worst / largest).toBeLessThan(1e-5)
    }
    const { plan, procs } = await planned('encoder_decoder', encdec, 3, 'component', 0, 'webgpu')
    const ed2 = await head(encdec)
    const driver = new SessionDriver({ endpoint: new Endpoint(ed2.node), config: decoderModelConfig(ed) })
    await driver.start()
    cleanup.push(async () => { await driver.stop() })
    const decoder: RouteHop[] = plan.stages.filter(s => s.component === 'decoder').map(s => ({ peerId: s.primary, addrs: addrsOf(procs)(s.primary), layers: s.range }))
    const sampling = { temperature: 0, topK: 0, topP: 1, seed: 0 }
    const cpuTokens = (await encoderDecoderGenerate({ model: encdec, prompt: INPUT, maxTokens: 24, sampling })).tokens
    const got = await generateEncoderDecoder({ components: ed2.components, driver, encoder: plan.stages.filter(s => s.component === 'encoder'), decoder, addrsOf: addrsOf(procs), input: INPUT, start: [ed.decoder.startId ?? 0], maxTokens: 24, sampling, stopIds: ed.decoder.stopIds ?? [] })
    expect(got.tokens).toEqual(cpuTokens)
  })
})
