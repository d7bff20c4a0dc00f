// Stages cut inside transformer blocks (StageInit.units): unit 2l is layer l's attention
// half, 2l + 1 its feed-forward half. A chain cut at any unit boundaries must compute the
// whole model's values bit for bit (the residual stream crosses each cut), load only the
// weights of its units, and keep KV caches only for the layers whose attention it runs.
import { beforeAll, describe, expect, it } from 'vitest'
import { syntheticModel } from '@shardmesh/model'
import type { Checkpoint, Tensor } from '@shardmesh/model'
import { attentionLayersOfUnits, cpuBackend, evenUnitRanges, forwardChain, generate, layersOfUnits, unitRange } from '../src/index.ts'
import type { BatchItem, SamplingParams, Stage, StageOutput, StageSession } from '../src/index.ts'
import type { KvCache } from '../src/cpu/kv-cache.ts'
import { ATTENTION, chain, closeAll, expectEveryCutExact, FFN, firstDiff, generated, prefill, singleUnits, stories, without } from './units-fixture.ts'
import type { GoldenCase } from './units-fixture.ts'

let model: Checkpoint
let golden: GoldenCase
let n: number // layers
beforeAll(async () => {
  ({ model, golden } = await stories())
  n = model.config.nLayers
})

const cacheOf = (session: StageSession): KvCache => (session as unknown as { cache: KvCache }).cache

describe('unit range helpers', () => {
  it('map between layers and units', () => {
    expect(unitRange([1, 3])).toEqual([2, 6])
    expect(layersOfUnits([2, 6])).toEqual([1, 3])
    expect(layersOfUnits([1, 4])).toEqual([0, 2])
    expect(layersOfUnits([3, 5])).toEqual([1, 3])
    expect(attentionLayersOfUnits([1, 2])).toEqual([1, 1]) // layer 0's feed-forward only
    expect(attentionLayersOfUnits([1, 4])).toEqual([1, 2])
    expect(attentionLayersOfUnits([2, 5])).toEqual([1, 3])
    expect(evenUnitRanges(5, 3)).toEqual([[0, 4], [4, 7], [7, 10]])
    expect(evenUnitRanges(2, 4)).toEqual([[0, 1], [1, 2], [2, 3], [3, 4]])
    expect(() => evenUnitRanges(2, 5)).toThrow(RangeError)
  })
})

describe('cpu stages cut at unit boundaries (stories260K)', () => {
  for (const threads of [1, 2]) {
    it(`every two-way cut gives the whole model's residual stream, logits and golden tokens (${threads} thread(s))`, async () => {
      const backend = cpuBackend({ threads })
      const whole = await chain(backend, model, [[0, 2 * n]])
      const byLayers = await backend.createStage({ config: model.config, layers: [0, n], tensors: model.tensors })
      expect(whole[0].units).toEqual([0, 2 * n])
      expect(byLayers.units).toEqual([0, 2 * n])
      // 200 positions: long enough that the matmuls pass the threading threshold
      const sequence = golden.full_sequence
      const want = await prefill(whole, sequence)
      expect(firstDiff((await prefill([byLayers], sequence)).logits, want.logits)).toBe(-1)
      expect(await generated(whole, model, golden)).toEqual(golden.generated_tokens)
      // the residual stream after every unit, from a chain of one-unit stages, at every cut
      await expectEveryCutExact(backend, model, sequence, want, async (stages, b, atCut) => {
        expect(await generated(stages, model, golden), `cut at unit ${b}: tokens`).toEqual(golden.generated_tokens)
        if (b % 2 === 0) {
          // a cut between whole layers is the same cut as by layers
          const first = await backend.createStage({ config: model.config, layers: [0, b / 2], tensors: model.tensors })
          const hidden = (await first.createSession().forward({ position: 0, tokens: sequence })).hidden!
          expect(firstDiff(hidden, atCut), `layers [0, ${b / 2}) vs units [0, ${b})`).toBe(-1)
          await first.close()
        }
      })
      await closeAll([...whole, byLayers])
    })
  }

  const patterns: Array<Array<[number, number]>> = [
    [[0, 1], [1, 2], [2, 5], [5, 10]],
    [[0, 3], [3, 4], [4, 9], [9, 10]],
    [[0, 2], [2, 3], [3, 7], [7, 8], [8, 10]]
  ]
  it.each(patterns.map(p => [JSON.stringify(p), p] as const))('the cut %s gives the whole model\'s greedy and sampled tokens', async (_name, ranges) => {
    const backend = cpuBackend()
    const whole = await chain(backend, model, [[0, 2 * n]])
    const stages = await chain(backend, model, ranges)
    expect(stages.map(s => [s.embed, s.head])).toEqual(ranges.map(([u0, u1]) => [u0 === 0, u1 === 2 * n]))
    const sequence = golden.full_sequence.slice(0, 64)
    expect(firstDiff((await prefill(stages, sequence)).logits, (await prefill(whole, sequence)).logits)).toBe(-1)
    expect(await generated(stages, model, golden)).toEqual(golden.generated_tokens)
    const sampling: SamplingParams = { temperature: 0.9, topP: 0.95, seed: 1234 }
    const sampled = await generated(whole, model, golden, sampling)
    expect(sampled).not.toEqual(golden.generated_tokens) // the draw did something
    expect(await generated(stages, model, golden, sampling)).toEqual(sampled)
    await closeAll([...whole, ...stages])
  })

  it('matmuls split over 2 threads on a model above the threading threshold: every cut gives the 1-thread whole model', async () => {
    const big = syntheticModel({ dim: 512, hiddenDim: 1024, nLayers: 2, nHeads: 8, nKvHeads: 4, vocabSize: 1024, seed: 3 })
    const prompt = [1, 80, 120, 7, 300, 42, 9, 250, 11, 600, 512, 3]
    const sampling: SamplingParams = { temperature: 0.8, seed: 5 }
    const run = async (stages: Stage[]): Promise<{ logits: Float32Array, tokens: number[] }> => {
      const logits = (await forwardChain(stages.map(s => s.createSession()), 0, prompt, { allLogits: true })).logits!
      const r = await generate({ sessions: stages.map(s => s.createSession()), promptTokens: prompt, maxTokens: 8, contextLength: big.config.contextLength, sampling })
      return { logits, tokens: r.tokens }
    }
    const want = await run(await chain(cpuBackend(), big, [[0, 4]]))
    const two = cpuBackend({ threads: 2 })
    for (const b of [1, 2, 3]) {
      const stages = await chain(two, big, [[0, b], [b, 4]])
      const got = await run(stages)
      expect(firstDiff(got.logits, want.logits), `cut at unit ${b}`).toBe(-1)
      expect(got.tokens, `cut at unit ${b}`).toEqual(want.tokens)
      await closeAll(stages)
    }
  })

  for (const threads of [1, 2]) {
    it(`forwardBatch on a chain cut inside blocks gives each session its own run, prefill and decode mixed (${threads} thread(s))`, async () => {
      const backend = cpuBackend({ threads })
      const ranges: Array<[number, number]> = [[0, 1], [1, 2], [2, 5], [5, 10]]
      const batched = await chain(backend, model, ranges)
      const alone = await chain(backend, model, ranges)
      const [whole] = await chain(backend, model, [[0, 2 * n]])
      const plans = [
        { prompt: golden.prompt_tokens, sampling: { temperature: 0 } },
        { prompt: [1, 5], sampling: { temperature: 0.9, topK: 40, seed: 7 } },
        { prompt: golden.full_sequence.slice(0, 9), sampling: { temperature: 1.1, topP: 0.8, seed: 3 } }
      ]
      const steps = 6
      const batchChains = plans.map(() => batched.map(s => s.createSession()))
      const aloneChains = plans.map(() => alone.map(s => s.createSession()))
      const wholeSessions = plans.map(() => whole.createSession())
      const positions = plans.map(() => 0)
      const next = plans.map(p => p.prompt)
      for (let step = 0; step < steps + plans.length; step++) {
        // session j starts j steps late, so batches mix prompt rows with decode rows
        const active = plans.map((_, j) => j).filter(j => step >= j && step < j + steps)
        let outs: StageOutput[] = []
        const hidden: Float32Array[][] = active.map(() => [])
        for (let i = 0; i < batched.length; i++) {
          const items: BatchItem[] = active.map((j, a) => ({
            session: batchChains[j][i],
            input: i === 0 ? { position: positions[j], tokens: next[j] } : { position: positions[j], hidden: outs[a].hidden! },
            options: i === batched.length - 1 ? { sample: plans[j].sampling } : {}
          }))
          const settled = await batched[i].forwardBatch(items)
          outs = settled.map(r => { if (r.status === 'rejected') throw r.reason; return r.value })
          if (i < batched.length - 1) outs.forEach((o, a) => { hidden[a].push(o.hidden!) })
        }
        for (const [a, j] of active.entries()) {
          const label = `session ${j} step ${step}`
          let own = await aloneChains[j][0].forward({ position: positions[j], tokens: next[j] })
          for (let i = 1; i < alone.length; i++) {
            expect(firstDiff(hidden[a][i - 1], own.hidden!), `${label}: hidden after stage ${i - 1}`).toBe(-1)
            own = await aloneChains[j][i].forward({ position: positions[j], hidden: own.hidden! }, i === alone.length - 1 ? { sample: plans[j].sampling } : {})
          }
          const ref = await wholeSessions[j].forward({ position: positions[j], tokens: next[j] }, { sample: plans[j].sampling })
          expect(firstDiff(outs[a].logits!, ref.logits!), `${label}: logits`).toBe(-1)
          expect(outs[a].token, `${label}: token`).toBe(ref.token)
          expect(own.token, `${label}: token alone`).toBe(ref.token)
          positions[j] += next[j].length
          next[j] = [ref.token!]
        }
      }
      await closeAll([...batched, ...alone, whole])
    })
  }
})

describe('stages holding half a block', () => {
  it('a stage of one feed-forward unit keeps no KV cache; one ending after an attention unit keeps that layer\'s only', async () => {
    const backend = cpuBackend()
    const mlp = await backend.createStage({ config: model.config, layers: [0, 0], units: [1, 2], tensors: model.tensors })
    const mixed = await backend.createStage({ config: model.config, layers: [0, 0], units: [1, 4], tensors: model.tensors })
    const attn = await backend.createStage({ config: model.config, layers: [0, 0], units: [2, 3], tensors: model.tensors })
    expect([mlp.units, mlp.layers, mlp.embed, mlp.head]).toEqual([[1, 2], [0, 1], false, false])
    expect([mixed.units, mixed.layers]).toEqual([[1, 4], [0, 2]])
    expect([attn.units, attn.layers]).toEqual([[2, 3], [1, 2]])
    expect((mlp as unknown as { kvLayers: [number, number] }).kvLayers).toEqual([1, 1])
    expect((mixed as unknown as { kvLayers: [number, number] }).kvLayers).toEqual([1, 2])
    expect((attn as unknown as { kvLayers: [number, number] }).kvLayers).toEqual([1, 2])
    const hidden = new Float32Array(6 * model.config.dim).map((_, i) => Math.sin(i))
    const kvDim = model.config.nKvHeads * model.config.headDim
    const sessions = [mlp, mixed, attn].map(s => s.createSession())
    for (const s of sessions) await s.forward({ position: 0, hidden })
    // 6 positions reserve 16: keys and values, f32, per layer with attention here
    expect(sessions.map(s => cacheOf(s).keys.length)).toEqual([0, 1, 1])
    expect(sessions.map(s => cacheOf(s).bytes)).toEqual([0, 16 * kvDim * 4 * 2, 16 * kvDim * 4 * 2])
    await closeAll([mlp, mixed, attn])
  })

  it('a chain with a feed-forward-only stage rewinds and replays to the same bits', async () => {
    const backend = cpuBackend()
    const stages = await chain(backend, model, [[0, 1], [1, 2], [2, 2 * n]])
    const [whole] = await chain(backend, model, [[0, 2 * n]])
    const seq = golden.full_sequence
    const sessions = stages.map(s => s.createSession())
    await forwardChain(sessions, 0, seq.slice(0, 10))
    const first = (await forwardChain(sessions, 10, [seq[10]])).logits!
    for (const s of sessions) s.truncate(4)
    expect(sessions.map(s => s.position)).toEqual([4, 4, 4])
    expect(() => { sessions[1].truncate(5) }).toThrow(expect.objectContaining({ name: 'StageInputError' }))
    await forwardChain(sessions, 4, seq.slice(4, 10))
    const replayed = (await forwardChain(sessions, 10, [seq[10]])).logits!
    expect(firstDiff(replayed, first)).toBe(-1)
    const ref = (await forwardChain([whole.createSession()], 0, seq.slice(0, 11))).logits!
    expect(firstDiff(replayed, ref)).toBe(-1)
    await closeAll([...stages, whole])
  })

  it('loads only the weights of its units: a stage runs without the tensors of the halves it does not hold', async () => {
    const backend = cpuBackend()
    const sequence = golden.full_sequence.slice(0, 12)
    const after = (await prefill(await chain(backend, model, singleUnits(n)), sequence)).hidden // after unit u: after[u - 1]
    // layer 1 without its attention: its feed-forward unit (3) runs; a stage that needs unit 2 is refused, naming it
    const noAttention = without(model.tensors, 1, ATTENTION)
    const mlp = await backend.createStage({ config: model.config, layers: [0, 0], units: [3, 4], tensors: noAttention })
    const out = (await mlp.createSession().forward({ position: 0, hidden: after[2] })).hidden!
    expect(firstDiff(out, after[3])).toBe(-1)
    await expect(backend.createStage({ config: model.config, layers: [0, 0], units: [2, 4], tensors: noAttention })).rejects.toMatchObject({ name: 'MissingFieldError', message: expect.stringContaining('layers.1.') })
    await expect(backend.createStage({ config: model.config, layers: [1, 2], tensors: noAttention })).rejects.toMatchObject({ name: 'MissingFieldError' })
    // layer 1 without its feed-forward: its attention unit (2) runs
    const noFfn = without(model.tensors, 1, FFN)
    const attn = await backend.createStage({ config: model.config, layers: [0, 0], units: [2, 3], tensors: noFfn })
    expect(firstDiff((await attn.createSession().forward({ position: 0, hidden: after[1] })).hidden!, after[2])).toBe(-1)
    await expect(backend.createStage({ config: model.config, layers: [0, 0], units: [2, 4], tensors: noFfn })).rejects.toMatchObject({ name: 'MissingFieldError', message: expect.stringContaining('layers.1.') })
    // exactly the tensors a stage needs, nothing else: the head stage of layer 4's feed-forward
    const only = (names: string[]): Map<string, Tensor> => new Map(names.map(k => [k, model.tensors.get(k)!]))
    const head = await backend.createStage({ config: model.config, layers: [0, 0], units: [9, 10], tensors: only([...FFN.map(k => `layers.4.${k}`), 'norm', model.config.tiedEmbeddings ? 'tok_embeddings' : 'output']) })
    const logits = (await head.createSession().forward({ position: 0, hidden: after[8] }, { allLogits: true })).logits!
    expect(firstDiff(logits, (await prefill(await chain(backend, model, [[0, 2 * n]]), sequence)).logits)).toBe(-1)
    const embed = await backend.createStage({ config: model.config, layers: [0, 0], units: [0, 1], tensors: only([...ATTENTION.map(k => `layers.0.${k}`), 'tok_embeddings']) })
    expect(firstDiff((await embed.createSession().forward({ position: 0, tokens: sequence })).hidden!, after[0])).toBe(-1)
    await closeAll([mlp, attn, head, embed])
  })
})

describe('unit ranges a stage refuses', () => {
  const bad: Array<[string, [number, number], RegExp]> = [
    ['empty', [3, 3], /unit range \[3, 3\) is empty/],
    ['reversed', [4, 2], /unit range \[4, 2\) is empty/],
    ['negative', [-1, 2], /does not fit a model of 5 layers \(units 0\.\.10/],
    ['past the last unit', [0, 11], /does not fit a model of 5 layers/],
    ['fractional', [0.5, 2], /must be whole numbers/],
    ['infinite', [1, Infinity], /must be whole numbers/],
    ['NaN', [Number.NaN, 1], /must be whole numbers/]
  ]
  it.each(bad)('%s: StageConfigError', async (_name, units, message) => {
    await expect(cpuBackend().createStage({ config: model.config, layers: [0, n], units, tensors: model.tensors })).rejects.toMatchObject({ name: 'StageConfigError', message: expect.stringMatching(message) })
  })

  it('units override layers; without units a stage runs whole layers as before', async () => {
    const s = await cpuBackend().createStage({ config: model.config, layers: [7, 9], units: [3, 6], tensors: model.tensors })
    expect([s.units, s.layers, s.embed, s.head]).toEqual([[3, 6], [1, 3], false, false])
    const old = await cpuBackend().createStage({ config: model.config, layers: [1, 3], tensors: model.tensors })
    expect([old.units, old.layers, (old as unknown as { kvLayers: [number, number] }).kvLayers]).toEqual([[2, 6], [1, 3], [1, 3]])
    await closeAll([s, old])
  })

  it('names the unit range in input errors', async () => {
    const s = await cpuBackend().createStage({ config: model.config, layers: [0, 0], units: [1, 4], tensors: model.tensors })
    await expect(s.createSession().forward({ position: 0, tokens: [1] })).rejects.toMatchObject({ name: 'StageInputError', message: 'stage units [1, 4) takes hidden states, not token ids' })
    await s.close()
  })
})
