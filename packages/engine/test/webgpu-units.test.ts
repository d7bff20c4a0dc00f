// WebGPU stages cut at unit boundaries (StageInit.units): the same contract as the CPU
// stages in units.test.ts — a chain cut inside blocks gives the whole WebGPU model's bits
// and the golden tokens, a feed-forward-only stage keeps no KV cache and needs no attention
// weights, bad ranges are refused. On SwiftShader without a GPU, so the runs stay short.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Checkpoint } from '@shardmesh/model'
import { forwardChain, webgpuBackend } from '../src/index.ts'
import type { WebGpuBackend } from '../src/index.ts'
import { requestContext } from '../src/webgpu/context.ts'
import type { WebGpuStage } from '../src/webgpu/stage.ts'
import type { WebGpuStageSession } from '../src/webgpu/session.ts'
import { ATTENTION, chain, closeAll, expectEveryCutExact, firstDiff, generated, prefill, stories, without } from './units-fixture.ts'
import type { GoldenCase } from './units-fixture.ts'

process.env.VK_ICD_FILENAMES ??= '/usr/lib/chromium/vk_swiftshader_icd.json'

let device: GPUDevice
let backend: WebGpuBackend
let model: Checkpoint
let golden: GoldenCase
let n: number
beforeAll(async () => {
  device = (await requestContext()).device
  backend = webgpuBackend({ device })
  ;({ model, golden } = await stories())
  n = model.config.nLayers
})
afterAll(() => { device?.destroy() })

describe('webgpu stages cut at unit boundaries (stories260K)', () => {
  it('every two-way cut gives the whole model\'s residual stream and logits bit for bit', async () => {
    const sequence = golden.full_sequence.slice(0, 40)
    const whole = await chain(backend, model, [[0, 2 * n]])
    const want = await prefill(whole, sequence)
    await expectEveryCutExact(backend, model, sequence, want)
    await closeAll(whole)
  }, 60_000)

  it('chains cut inside blocks generate the whole model\'s tokens, which are the golden tokens', async () => {
    // the first 64 greedy tokens (the golden suite runs the whole model's 196 on this backend)
    const count = 64
    const want = golden.generated_tokens.slice(0, count)
    const whole = await chain(backend, model, [[0, 2 * n]])
    expect(await generated(whole, model, golden, undefined, count)).toEqual(want)
    const cuts: Array<Array<[number, number]>> = [[[0, 1], [1, 2], [2, 5], [5, 10]], [[0, 3], [3, 10]], [[0, 9], [9, 10]]]
    for (const ranges of cuts) {
      const stages = await chain(backend, model, ranges)
      expect(await generated(stages, model, golden, undefined, count), JSON.stringify(ranges)).toEqual(want)
      await closeAll(stages)
    }
    await closeAll(whole)
  }, 60_000)

  it('a feed-forward-only stage keeps no KV cache, runs without attention weights, and rewinds', async () => {
    const first = await backend.createStage({ config: model.config, layers: [0, 0], units: [0, 1], tensors: model.tensors })
    const mlp = await backend.createStage({ config: model.config, layers: [0, 0], units: [1, 2], tensors: without(model.tensors, 0, ATTENTION) })
    const rest = await backend.createStage({ config: model.config, layers: [0, 0], units: [2, 2 * n], tensors: model.tensors })
    expect((mlp as WebGpuStage).kvLayers).toEqual([1, 1])
    expect((rest as WebGpuStage).kvLayers).toEqual([1, n])
    const [whole] = await chain(backend, model, [[0, 2 * n]])
    const seq = golden.full_sequence
    const sessions = [first, mlp, rest].map(s => s.createSession())
    await forwardChain(sessions, 0, seq.slice(0, 10))
    expect((sessions[1] as WebGpuStageSession).kv.bytes).toBe(0)
    expect((sessions[0] as WebGpuStageSession).kv.keys.length).toBe(1)
    expect((sessions[2] as WebGpuStageSession).kv.keys.length).toBe(n - 1)
    const firstRun = (await forwardChain(sessions, 10, [seq[10]])).logits!
    for (const s of sessions) s.truncate(4)
    await forwardChain(sessions, 4, seq.slice(4, 10))
    const replayed = (await forwardChain(sessions, 10, [seq[10]])).logits!
    expect(firstDiff(replayed, firstRun)).toBe(-1)
    expect(firstDiff(replayed, (await forwardChain([whole.createSession()], 0, seq.slice(0, 11))).logits!)).toBe(-1)
    await expect(backend.createStage({ config: model.config, layers: [0, 0], units: [0, 2], tensors: without(model.tensors, 0, ATTENTION) })).rejects.toMatchObject({ name: 'MissingFieldError', message: expect.stringContaining('layers.0.') })
    await closeAll([first, mlp, rest, whole])
  }, 60_000)

  it('refuses bad unit ranges with StageConfigError', async () => {
    for (const units of [[2, 2], [3, 1], [-1, 1], [0, 2 * n + 1], [0.5, 1]] as Array<[number, number]>) {
      await expect(backend.createStage({ config: model.config, layers: [0, n], units, tensors: model.tensors }), JSON.stringify(units)).rejects.toMatchObject({ name: 'StageConfigError', message: expect.stringMatching(/unit range/) })
    }
  })
})
