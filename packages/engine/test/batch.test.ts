import { describe, expect, it } from 'vitest'
import { syntheticModel, SYNTHETIC_PRESETS } from '@shardmesh/model'
import type { Checkpoint } from '@shardmesh/model'
import { cpuBackend } from '../src/index.ts'
import type { BatchItem, SamplingParams, Stage, StageOutput, StageSession } from '../src/index.ts'

/**
 * Stage.forwardBatch: several sessions' steps in one pass must give each session exactly
 * what its own forward gives, for prefill and decode rows mixed in one batch, for middle
 * stages (hidden states) and head stages (logits, sampled tokens), with 1 and 2 threads.
 */

interface Plan { prompt: number[], sampling: SamplingParams }

const PLANS: Plan[] = [
  { prompt: [1, 80, 120, 7, 300], sampling: { temperature: 0 } },
  { prompt: [1, 5], sampling: { temperature: 0.9, topK: 40, seed: 7 } },
  { prompt: [1, 200, 201, 202, 203, 204, 205, 11], sampling: { temperature: 1.1, topP: 0.8, seed: 3 } }
]
const STEPS = 6

async function stages (model: Checkpoint, ranges: Array<[number, number]>, threads: number): Promise<Stage[]> {
  const backend = cpuBackend({ threads })
  return await Promise.all(ranges.map(async layers => await backend.createStage({ config: model.config, layers, tensors: model.tensors })))
}

/** One step of one session through the chain of stages, alone. */
async function stepAlone (chain: StageSession[], position: number, tokens: number[], sampling: SamplingParams): Promise<{ logits: Float32Array, token: number, hidden: Float32Array[] }> {
  const hidden: Float32Array[] = []
  let out = await chain[0].forward({ position, tokens }, chain.length === 1 ? { sample: sampling } : {})
  for (let i = 1; i < chain.length; i++) {
    hidden.push(out.hidden!)
    out = await chain[i].forward({ position, hidden: out.hidden! }, i === chain.length - 1 ? { sample: sampling } : {})
  }
  return { logits: out.logits!, token: out.token!, hidden }
}

/** One step of every session through the chain, each stage running all of them as one batch. */
async function stepBatched (chains: StageSession[][], chain: Stage[], positions: number[], inputs: number[][], sampling: SamplingParams[]): Promise<Array<{ logits: Float32Array, token: number, hidden: Float32Array[] }>> {
  const hidden: Float32Array[][] = chains.map(() => [])
  let outs: StageOutput[] = []
  for (let i = 0; i < chain.length; i++) {
    const items: BatchItem[] = chains.map((c, j) => ({
      session: c[i],
      input: i === 0 ? { position: positions[j], tokens: inputs[j] } : { position: positions[j], hidden: outs[j].hidden! },
      options: i === chain.length - 1 ? { sample: sampling[j] } : {}
    }))
    const settled = await chain[i].forwardBatch(items)
    outs = settled.map(r => { if (r.status === 'rejected') throw r.reason; return r.value })
    if (i < chain.length - 1) outs.forEach((o, j) => { hidden[j].push(o.hidden!) })
  }
  return outs.map((o, j) => ({ logits: o.logits!, token: o.token!, hidden: hidden[j] }))
}

describe('forwardBatch (cpu)', () => {
  const cases: Array<{ preset: keyof typeof SYNTHETIC_PRESETS, ranges: Array<[number, number]>, threads: number }> = [
    { preset: 'tiny-gqa2', ranges: [[0, 3]], threads: 1 },
    { preset: 'tiny-gqa2', ranges: [[0, 1], [1, 3]], threads: 1 },
    { preset: 'tiny-gqa4-untied', ranges: [[0, 2], [2, 3], [3, 4]], threads: 2 }
  ]
  for (const { preset, ranges, threads } of cases) {
    it(`${preset} over ${ranges.length} stage(s), ${threads} thread(s): every session equals its own run bit for bit, prefill and decode mixed`, async () => {
      const model = syntheticModel(SYNTHETIC_PRESETS[preset])
      const alone = await stages(model, ranges, threads)
      const batched = await stages(model, ranges, threads)
      const aloneChains = PLANS.map(() => alone.map(s => s.createSession()))
      const batchChains = PLANS.map(() => batched.map(s => s.createSession()))
      // session j starts j steps late, so every batch mixes prompt rows with single decode rows
      const positions = PLANS.map(() => 0)
      const next = PLANS.map(p => p.prompt)
      for (let step = 0; step < STEPS + PLANS.length; step++) {
        const active = PLANS.map((_, j) => j).filter(j => step >= j && step < j + STEPS)
        const got = await stepBatched(active.map(j => batchChains[j]), batched, active.map(j => positions[j]), active.map(j => next[j]), active.map(j => PLANS[j].sampling))
        for (const [a, j] of active.entries()) {
          const want = await stepAlone(aloneChains[j], positions[j], next[j], PLANS[j].sampling)
          for (let h = 0; h < want.hidden.length; h++) expect(Array.from(got[a].hidden[h]), `session ${j} step ${step} stage ${h} hidden`).toEqual(Array.from(want.hidden[h]))
          expect(Array.from(got[a].logits), `session ${j} step ${step} logits`).toEqual(Array.from(want.logits))
          expect(got[a].token, `session ${j} step ${step} token`).toBe(want.token)
          positions[j] += next[j].length
          next[j] = [want.token]
        }
      }
      await Promise.all([...alone, ...batched].map(async s => { await s.close() }))
    })
  }

  it('allLogits in a batch returns every row of that item only', async () => {
    const model = syntheticModel(SYNTHETIC_PRESETS['tiny-gqa2'])
    const [stage] = await stages(model, [[0, 3]], 1)
    const prompt = PLANS[2].prompt
    const want = (await stage.createSession().forward({ position: 0, tokens: prompt }, { allLogits: true })).logits!
    const [all, last] = await stage.forwardBatch([
      { session: stage.createSession(), input: { position: 0, tokens: prompt }, options: { allLogits: true } },
      { session: stage.createSession(), input: { position: 0, tokens: prompt } }
    ])
    expect(all.status).toBe('fulfilled')
    expect(last.status).toBe('fulfilled')
    const v = model.config.vocabSize
    expect(Array.from((all as PromiseFulfilledResult<StageOutput>).value.logits!)).toEqual(Array.from(want))
    expect(Array.from((last as PromiseFulfilledResult<StageOutput>).value.logits!)).toEqual(Array.from(want.subarray((prompt.length - 1) * v)))
  })

  it('rejects a bad item alone: the others are computed and the bad session keeps its state', async () => {
    const model = syntheticModel(SYNTHETIC_PRESETS['tiny-gqa2'])
    const [stage, other] = await stages(model, [[0, 3], [0, 3]], 1)
    const good = stage.createSession()
    const wrongPosition = stage.createSession()
    const badToken = stage.createSession()
    const aborted = stage.createSession()
    const foreign = other.createSession()
    const want = (await stage.createSession().forward({ position: 0, tokens: [1, 5] })).logits!
    const controller = new AbortController()
    controller.abort(new Error('caller gave up'))
    const results = await stage.forwardBatch([
      { session: wrongPosition, input: { position: 3, tokens: [1] } },
      { session: good, input: { position: 0, tokens: [1, 5] } },
      { session: badToken, input: { position: 0, tokens: [1, 99999] } },
      { session: good, input: { position: 0, tokens: [1, 5] } },
      { session: aborted, input: { position: 0, tokens: [1] }, options: { signal: controller.signal } },
      { session: foreign, input: { position: 0, tokens: [1] } }
    ])
    expect(results.map(r => r.status)).toEqual(['rejected', 'fulfilled', 'rejected', 'rejected', 'rejected', 'rejected'])
    const reasons = results.map(r => r.status === 'rejected' ? String((r.reason as Error).message) : '')
    expect(reasons[0]).toMatch(/input starts at position 3, the session is at 0/)
    expect(reasons[2]).toMatch(/token id 99999/)
    expect(reasons[3]).toMatch(/already in this batch/)
    expect(reasons[4]).toMatch(/caller gave up/)
    expect(reasons[5]).toMatch(/another stage/)
    expect(Array.from((results[1] as PromiseFulfilledResult<StageOutput>).value.logits!)).toEqual(Array.from(want))
    expect([good.position, wrongPosition.position, badToken.position, aborted.position, foreign.position]).toEqual([2, 0, 0, 0, 0])
    // the rejected sessions are still usable
    const again = (await badToken.forward({ position: 0, tokens: [1, 5] })).logits!
    expect(Array.from(again)).toEqual(Array.from(want))
  })

  // big enough that a pass takes several ms, so it gives the event loop turns between layers
  const medium = syntheticModel({ dim: 384, hiddenDim: 1024, nLayers: 6, nHeads: 6, nKvHeads: 6, vocabSize: 2000, name: 'medium' })
  const long = (k: number): number[] => [1, ...Array.from({ length: 31 }, (_, i) => 3 + ((i * 37 + k * 11) % 1990))]

  it('forwards started together on one stage (passes that yield between layers) each get their own result', async () => {
    const [stage] = await stages(medium, [[0, 6]], 1)
    const want: Float32Array[] = []
    for (let k = 0; k < 3; k++) want.push((await stage.createSession().forward({ position: 0, tokens: long(k) }, { allLogits: true })).logits!)
    const got = await Promise.all([0, 1, 2].map(async k => (await stage.createSession().forward({ position: 0, tokens: long(k) }, { allLogits: true })).logits!))
    got.forEach((g, k) => { expect(Array.from(g), `session ${k}`).toEqual(Array.from(want[k])) })
    await stage.close()
  })

  it('a stage closed while a pass is queued or running rejects it with StageClosedError, and later ones too', async () => {
    const [stage] = await stages(medium, [[0, 6]], 1)
    const running = stage.createSession().forward({ position: 0, tokens: long(0) })
    const closed = stage.close()
    await expect(running).rejects.toMatchObject({ name: 'StageClosedError' })
    await closed
    await expect(stage.createSession().forward({ position: 0, tokens: [1] })).rejects.toMatchObject({ name: 'StageClosedError' })
  })
})
