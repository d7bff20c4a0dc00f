import { describe, expect, it } from 'vitest'
import { syntheticModel, SYNTHETIC_PRESETS } from '@shardmesh/model'
import { cpuBackend, forwardChain } from '../src/index.ts'
import { expectBadInputRefused } from './bad-input-contract.ts'

const model = syntheticModel(SYNTHETIC_PRESETS['tiny-gqa2'])
const { config } = model
const tokens = [1, 80, 120, 7, 300, 42, 9, 250]

async function stage (layers: [number, number], activations: 'F32' | 'F16' = 'F32') {
  return await cpuBackend().createStage({ config, layers, tensors: model.tensors, activations })
}

describe('cpu stage', () => {
  it('prefill of n positions equals n single-position steps bit for bit', async () => {
    const s = await stage([0, config.nLayers])
    const prefill = (await s.createSession().forward({ position: 0, tokens }, { allLogits: true })).logits!
    const step = s.createSession()
    for (let p = 0; p < tokens.length; p++) {
      const logits = (await step.forward({ position: p, tokens: [tokens[p]] })).logits!
      expect(Array.from(logits), `position ${p}`).toEqual(Array.from(prefill.subarray(p * config.vocabSize, (p + 1) * config.vocabSize)))
    }
  })

  it('rebuilds the same KV cache after truncate and replay', async () => {
    const s = await stage([0, config.nLayers])
    const session = s.createSession()
    await session.forward({ position: 0, tokens: tokens.slice(0, 6) })
    const first = (await session.forward({ position: 6, tokens: [tokens[6]] })).logits!
    session.truncate(3)
    expect(session.position).toBe(3)
    await session.forward({ position: 3, tokens: tokens.slice(3, 6) })
    const replayed = (await session.forward({ position: 6, tokens: [tokens[6]] })).logits!
    expect(Array.from(replayed)).toEqual(Array.from(first))
  })

  it('keeps sessions independent', async () => {
    const s = await stage([0, config.nLayers])
    const a = s.createSession()
    const b = s.createSession()
    const alone = (await s.createSession().forward({ position: 0, tokens: [1, 5, 6] })).logits!
    await a.forward({ position: 0, tokens: [1, 200, 201, 202] })
    const interleaved = (await b.forward({ position: 0, tokens: [1, 5, 6] })).logits!
    expect(Array.from(interleaved)).toEqual(Array.from(alone))
  })

  it('F16 activations between stages stay close to F32', async () => {
    const full = (await (await stage([0, 3])).createSession().forward({ position: 0, tokens }, { allLogits: true })).logits!
    const a = (await stage([0, 1], 'F16')).createSession()
    const b = (await stage([1, 3])).createSession()
    const split = (await forwardChain([a, b], 0, tokens, { allLogits: true })).logits!
    let worst = 0
    let scale = 0
    for (let i = 0; i < full.length; i++) { worst = Math.max(worst, Math.abs(full[i] - split[i])); scale = Math.max(scale, Math.abs(full[i])) }
    expect(worst).toBeGreaterThan(0) // F16 rounding did happen
    expect(worst / scale).toBeLessThan(1e-2)
  })

  it('rejects bad input with a named error and keeps the session usable', async () => {
    await expectBadInputRefused(config, async layers => await stage(layers))
  })

  it('refuses positions beyond the context and layer ranges beyond the model', async () => {
    const s = await stage([0, config.nLayers])
    const session = s.createSession()
    const long = new Array(config.contextLength + 1).fill(5)
    await expect(session.forward({ position: 0, tokens: long })).rejects.toMatchObject({ name: 'ContextLengthError' })
    await expect(stage([2, config.nLayers + 1])).rejects.toMatchObject({ name: 'StageConfigError' })
  })

  it('names a missing or misshapen tensor', async () => {
    const tensors = new Map(model.tensors)
    tensors.delete('layers.1.w2')
    await expect(cpuBackend().createStage({ config, layers: [1, 2], tensors })).rejects.toMatchObject({ name: 'MissingFieldError', message: expect.stringContaining('layers.1.w2') })
    // a stage not covering layer 1 does not need it
    await expect(cpuBackend().createStage({ config, layers: [2, 3], tensors })).resolves.toBeDefined()
    const wrong = new Map(model.tensors)
    const wq = model.tensors.get('layers.0.wq')!
    wrong.set('layers.0.wq', { ...wq, shape: [wq.shape[1], wq.shape[0] - 1] })
    await expect(cpuBackend().createStage({ config, layers: [0, 1], tensors: wrong })).rejects.toMatchObject({ name: 'StageConfigError', message: expect.stringContaining('layers.0.wq') })
  })
})
