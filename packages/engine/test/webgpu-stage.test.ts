// The WebGPU stage keeps the CPU stage's contract: prefill equals step-by-step decode bit
// for bit (every dot product sums in an order that does not depend on n), replay after
// truncate rebuilds the same KV cache, sessions are independent, stage splits give the same
// bits, bad input is rejected with the same named errors, and each decode step is one
// submission.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { syntheticModel, SYNTHETIC_PRESETS } from '@shardmesh/model'
import { forwardChain, webgpuBackend } from '../src/index.ts'
import { expectBadInputRefused } from './bad-input-contract.ts'
import type { WebGpuBackend } from '../src/index.ts'
import { requestContext } from '../src/webgpu/context.ts'

process.env.VK_ICD_FILENAMES ??= '/usr/lib/chromium/vk_swiftshader_icd.json'

const model = syntheticModel(SYNTHETIC_PRESETS['tiny-gqa2'])
const { config } = model
const tokens = [1, 80, 120, 7, 300, 42, 9, 250, 11, 12, 13]

let device: GPUDevice
let backend: WebGpuBackend
let submits = 0
beforeAll(async () => {
  device = (await requestContext()).device
  const submit = device.queue.submit.bind(device.queue)
  device.queue.submit = (buffers: Iterable<GPUCommandBuffer>) => { submits++; submit(buffers) }
  backend = webgpuBackend({ device })
})
afterAll(() => { device?.destroy() })

async function stage (layers: [number, number], activations: 'F32' | 'F16' = 'F32') {
  return await backend.createStage({ config, layers, tensors: model.tensors, activations })
}

const rowOf = (logits: Float32Array, p: number): number[] => Array.from(logits.subarray(p * config.vocabSize, (p + 1) * config.vocabSize))

describe('webgpu stage', () => {
  it('forwardBatch gives each session its own forward result and rejects a bad item alone', async () => {
    const s = await stage([0, config.nLayers])
    const want = [(await s.createSession().forward({ position: 0, tokens: [1, 5, 6] })).logits!, (await s.createSession().forward({ position: 0, tokens: [1, 80] })).logits!]
    const [a, bad, b] = await s.forwardBatch([
      { session: s.createSession(), input: { position: 0, tokens: [1, 5, 6] } },
      { session: s.createSession(), input: { position: 2, tokens: [1] } },
      { session: s.createSession(), input: { position: 0, tokens: [1, 80] } }
    ])
    expect(bad.status).toBe('rejected')
    expect(String((bad as PromiseRejectedResult).reason)).toMatch(/position/)
    expect(Array.from((a as PromiseFulfilledResult<{ logits?: Float32Array }>).value.logits!)).toEqual(Array.from(want[0]))
    expect(Array.from((b as PromiseFulfilledResult<{ logits?: Float32Array }>).value.logits!)).toEqual(Array.from(want[1]))
  })

  it('prefill of n positions equals n single-position steps bit for bit, across 128-position batches', async () => {
    const s = await stage([0, config.nLayers])
    const long = Array.from({ length: 140 }, (_, i) => tokens[i % tokens.length] + Math.floor(i / tokens.length))
    const prefill = (await s.createSession().forward({ position: 0, tokens: long }, { allLogits: true })).logits!
    const step = s.createSession()
    for (let p = 0; p < long.length; p++) {
      const logits = (await step.forward({ position: p, tokens: [long[p]] })).logits!
      expect(Array.from(logits), `position ${p}`).toEqual(rowOf(prefill, p))
    }
    const lastOnly = await s.createSession().forward({ position: 0, tokens: long }, { sample: {} })
    expect(Array.from(lastOnly.logits!)).toEqual(rowOf(prefill, long.length - 1))
    await s.close()
  }, 90_000) // the longest stage test on a software (SwiftShader) adapter

  it('rebuilds the same KV cache after truncate and replay, across a cache reallocation', async () => {
    const s = await stage([0, config.nLayers])
    const session = s.createSession()
    const long = Array.from({ length: 40 }, (_, i) => 1 + (i * 37) % 399) // grows the cache 16 → 32 → 64
    await session.forward({ position: 0, tokens: long.slice(0, 30) })
    const first = (await session.forward({ position: 30, tokens: long.slice(30) })).logits!
    session.truncate(3)
    expect(session.position).toBe(3)
    await session.forward({ position: 3, tokens: long.slice(3, 35) })
    const replayed = (await session.forward({ position: 35, tokens: long.slice(35) })).logits!
    expect(Array.from(replayed)).toEqual(Array.from(first))
    await s.close()
  })

  it('keeps sessions independent', async () => {
    const s = await stage([0, config.nLayers])
    const a = s.createSession()
    const b = s.createSession()
    const alone = (await s.createSession().forward({ position: 0, tokens: [1, 5, 6] })).logits!
    const [, interleaved] = await Promise.all([
      a.forward({ position: 0, tokens: [1, 200, 201, 202] }),
      b.forward({ position: 0, tokens: [1, 5, 6] })
    ])
    expect(Array.from(interleaved.logits!)).toEqual(Array.from(alone))
    await s.close()
  })

  it('split into stages gives the same bits; F16 activations stay close', async () => {
    const whole = await stage([0, 3])
    const full = (await whole.createSession().forward({ position: 0, tokens }, { allLogits: true })).logits!
    const parts = [await stage([0, 1]), await stage([1, 2]), await stage([2, 3])]
    const split = (await forwardChain(parts.map(p => p.createSession()), 0, tokens, { allLogits: true })).logits!
    expect(Array.from(split)).toEqual(Array.from(full))
    const half = [await stage([0, 1], 'F16'), await stage([1, 3])]
    const rounded = (await forwardChain(half.map(p => p.createSession()), 0, tokens, { allLogits: true })).logits!
    let worst = 0
    let scale = 0
    for (let i = 0; i < full.length; i++) { worst = Math.max(worst, Math.abs(full[i] - rounded[i])); scale = Math.max(scale, Math.abs(full[i])) }
    expect(worst).toBeGreaterThan(0) // F16 rounding did happen
    expect(worst / scale).toBeLessThan(1e-2)
    for (const s of [whole, ...parts, ...half]) await s.close()
  })

  it('decodes each token in one submission', async () => {
    const s = await stage([0, config.nLayers])
    const session = s.createSession()
    let out = await session.forward({ position: 0, tokens: [1, 2, 3] }, { sample: {} })
    const before = submits
    for (let p = 3; p < 13; p++) out = await session.forward({ position: p, tokens: [out.token!] }, { sample: {} })
    expect(submits - before).toBe(10)
    await s.close()
  })

  it('rejects bad input with a named error and keeps the session usable', async () => {
    await expectBadInputRefused(config, async layers => await stage(layers))
  })

  it('refuses positions beyond the context and layer ranges beyond the model', async () => {
    const s = await stage([0, config.nLayers])
    const session = s.createSession()
    await expect(session.forward({ position: 0, tokens: new Array(config.contextLength + 1).fill(1) })).rejects.toMatchObject({ name: 'ContextLengthError' })
    expect(session.position).toBe(0)
    await expect(stage([2, 5])).rejects.toMatchObject({ name: 'StageConfigError' })
    const bad = new Map(model.tensors)
    bad.set('layers.0.wq', { ...bad.get('layers.0.wq')!, shape: [config.dim, config.dim + 1] })
    await expect(backend.createStage({ config, layers: [0, 1], tensors: bad })).rejects.toMatchObject({ name: 'StageConfigError' })
    await s.close()
  })
})
