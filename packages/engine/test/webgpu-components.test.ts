// Models made of parts on the WebGPU backend, the contract of components.test.ts: encoder
// components (CLIP-style towers, a T5/Whisper-style encoder) cut into WebGPU stages give the
// whole WebGPU component's hidden states and embeddings bit for bit; a decoder cut into
// WebGPU stages, each cross-attending to the memory set on its session, the WebGPU
// single-process reference's logits and tokens bit for bit. Against the CPU backend: the same
// greedy and sampled tokens, and embeddings, memories and logits within TOLERANCE of the
// largest value (measured: about 1e-6; the GPU sums in f32 where the CPU twins use float64).
// On SwiftShader without a GPU, so the models are the small synthetic ones.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { decodeComponentModel, decoderModelConfig, encodeComponentModel } from '@shardmesh/model'
import type { ModelConfig, Tensor } from '@shardmesh/model'
import { cpuBackend, decoderTensorSource, encoderDecoderGenerate, fuseTowers, webgpuBackend } from '../src/index.ts'
import type { DecoderSession, DecoderStage, SamplingParams, StageOutput, WebGpuBackend } from '../src/index.ts'
import { requestContext } from '../src/webgpu/context.ts'
import { cuts, decode, decoderChain, encDec, encDecConfig, encoderChain, ENCODERS, firstDiff, nLayersOf, pixelsOf, PROMPT, TEXT, twoTower, valuesOf } from './components-fixture.ts'

process.env.VK_ICD_FILENAMES ??= '/usr/lib/chromium/vk_swiftshader_icd.json'

/** Largest |GPU − CPU| allowed, as a fraction of the largest |CPU value| (at least 1). */
const TOLERANCE = 1e-5

const cpu = cpuBackend()
const config = encDecConfig
const SAMPLED: SamplingParams = { temperature: 0.9, topK: 40, topP: 0.95, seed: 7 }

let device: GPUDevice
let gpu: WebGpuBackend
beforeAll(async () => {
  device = (await requestContext()).device
  gpu = webgpuBackend({ device })
})
afterAll(() => { device?.destroy() })

/** Largest |got − want| over the largest |want| (at least 1), naming where it is. */
function closeToCpu (got: Float32Array, want: Float32Array, what: string): void {
  expect(got.length, what).toBe(want.length)
  let worst = 0
  let at = 0
  let scale = 1
  for (let i = 0; i < want.length; i++) {
    scale = Math.max(scale, Math.abs(want[i]))
    const d = Math.abs(got[i] - want[i])
    if (!(d <= worst)) { worst = d; at = i }
  }
  expect(worst / scale, `${what}: index ${at}, gpu ${got[at]}, cpu ${want[at]}`).toBeLessThan(TOLERANCE)
}

describe('webgpu encoder stages', () => {
  for (const [model, component, input] of ENCODERS) {
    it(`${component}: every cut into 2 and 3 WebGPU stages gives the whole WebGPU component's output, and the hidden states at each cut, bit for bit`, async () => {
      const units = 2 * nLayersOf(model, component)
      const [whole] = await encoderChain(gpu, model, component, [[0, units]], input)
      // the residual stream after every unit, from one stage per unit
      const singles = await encoderChain(gpu, model, component, Array.from({ length: units }, (_, u): [number, number] => [u, u + 1]), input)
      expect(firstDiff(valuesOf(singles[units - 1]), valuesOf(whole)), 'one stage per unit').toBe(-1)
      for (const cut of [...cuts(units, 2), ...cuts(units, 3)]) {
        const outs = await encoderChain(gpu, model, component, cut, input)
        outs.forEach((out, i) => {
          expect(firstDiff(valuesOf(out), valuesOf(singles[cut[i][1] - 1])), `${JSON.stringify(cut)}: stage ${i}`).toBe(-1)
        })
      }
      // stages over whole layers (no units) are the same stages
      const byLayers = await gpu.createEncoderStage({ model: model.config, component, layers: [0, units / 2], tensors: model.tensors })
      expect([byLayers.units, byLayers.embed, byLayers.pool]).toEqual([[0, units], true, true])
      expect(firstDiff(valuesOf(await byLayers.forward(input)), valuesOf(whole))).toBe(-1)
      await byLayers.close()
    }, 60_000)

    it(`${component}: the WebGPU output and the hidden states after every unit are the CPU backend's within ${TOLERANCE} of the largest value`, async () => {
      const units = 2 * nLayersOf(model, component)
      const ranges = Array.from({ length: units }, (_, u): [number, number] => [u, u + 1])
      const onGpu = await encoderChain(gpu, model, component, ranges, input)
      const onCpu = await encoderChain(cpu, model, component, ranges, input)
      onGpu.forEach((out, u) => closeToCpu(valuesOf(out), valuesOf(onCpu[u]), `after unit ${u}`))
    })
  }

  it('towers: embeddings for several inputs and their cosine agree with the CPU backend', async () => {
    for (let seed = 1; seed <= 4; seed++) {
      const tokens = Array.from({ length: 2 + 7 * seed }, (_, i) => (i * 37 + 11 * seed) % 200)
      const [text, image] = await Promise.all([[gpu, cpu], [gpu, cpu]].map(async (backends, i) => await Promise.all(backends.map(async b => {
        const [out] = i === 0 ? await encoderChain(b, twoTower, 'text', [[0, 6]], { tokens }) : await encoderChain(b, twoTower, 'image', [[0, 6]], { pixels: pixelsOf(seed) })
        return valuesOf(out)
      }))))
      closeToCpu(text[0], text[1], `text embedding ${seed}`)
      closeToCpu(image[0], image[1], `image embedding ${seed}`)
      expect(Math.abs(fuseTowers(text[0], image[0]).similarity - fuseTowers(text[1], image[1]).similarity)).toBeLessThan(TOLERANCE)
    }
  })

  it('a causal tower runs the WebGPU Llama stage\'s kernels: its hidden states are the WebGPU Llama stage\'s bit for bit', async () => {
    if (twoTower.config.kind !== 'two_tower') throw new Error('kind')
    const t = twoTower.config.text
    const llama: ModelConfig = { architecture: 'llama', name: 'text-as-llama', ...t, vocabSize: t.vocabSize, ropeLayout: 'half', tiedEmbeddings: false, bosId: 1, eosId: 2, stopIds: [] }
    const llamaNames = {
      get: (name: string): Tensor | undefined => twoTower.tensors.get(name === 'tok_embeddings' ? 'text.embed' : 'text.' + name.replace('attention_norm', 'attn_norm'))
    }
    for (const layers of [[0, 1], [0, 2]] as Array<[number, number]>) {
      const stage = await gpu.createStage({ config: llama, layers, tensors: llamaNames, head: false })
      const got = await stage.createSession().forward({ position: 0, tokens: TEXT })
      const [tower] = await encoderChain(gpu, twoTower, 'text', [[0, 2 * layers[1]]], { tokens: TEXT })
      expect(firstDiff(got.hidden!, valuesOf(tower)), `layers ${JSON.stringify(layers)}`).toBe(-1)
      await stage.close()
    }
  })

  it('refuses bad inputs, ranges and tensors with the CPU backend\'s errors; a rejected input leaves the stage working', async () => {
    const image = await gpu.createEncoderStage({ model: twoTower.config, component: 'image', layers: [0, 2], tensors: twoTower.tensors })
    const middle = await gpu.createEncoderStage({ model: twoTower.config, component: 'image', layers: [1, 3], tensors: twoTower.tensors })
    const rejects = async (p: Promise<unknown>, name: string, message: RegExp): Promise<void> => { await expect(p).rejects.toMatchObject({ name, message: expect.stringMatching(message) }) }
    await rejects(image.forward({ pixels: new Float32Array(16 * 16 * 3 - 1) }), 'StageInputError', /16×16×3 = 768/)
    await rejects(image.forward({ tokens: [1, 2] }), 'StageInputError', /takes pixels/)
    await rejects(middle.forward({ pixels: pixelsOf(1) }), 'StageInputError', /takes hidden states/)
    await rejects(middle.forward({ hidden: new Float32Array(40 * 15), n: 15 }), 'StageInputError', /16 patches/)
    await rejects(middle.forward({ hidden: new Float32Array(40 * 16).fill(NaN), n: 16 }), 'NonFiniteActivationError', /position 0/)
    const out = await image.forward({ pixels: pixelsOf(1) })
    expect('hidden' in out && out.n).toBe(16)
    await image.close()
    await rejects(image.forward({ pixels: pixelsOf(1) }), 'StageClosedError', /closed/)
    await middle.close()
    const text = { model: twoTower.config, component: 'text' as const, layers: [0, 3] as [number, number], tensors: twoTower.tensors }
    await rejects(gpu.createEncoderStage({ ...text, layers: [0, 4] }), 'StageConfigError', /layer range/)
    await rejects(gpu.createEncoderStage({ ...text, component: 'encoder' }), 'StageConfigError', /no component encoder/)
    const missing = new Map(twoTower.tensors)
    missing.delete('text.layers.2.w3')
    await rejects(gpu.createEncoderStage({ ...text, tensors: missing }), 'MissingFieldError', /text\.layers\.2\.w3/)
    // a stage reads only its own tensors: layers [0, 2) need neither layer 2 nor the head
    missing.delete('text.proj')
    await (await gpu.createEncoderStage({ ...text, layers: [0, 2], tensors: missing })).close()
    const stage = await gpu.createEncoderStage({ ...text, layers: [0, 2] })
    await rejects(stage.forward({ tokens: new Array(33).fill(1) }), 'ContextLengthError', /33 positions exceed the context length 32/)
    await stage.close()
  })
})

describe('webgpu decoder stages', () => {
  it('the WebGPU reference gives the CPU reference\'s tokens, greedy and sampled, with memory and logits within tolerance', async () => {
    const samplings: SamplingParams[] = [{}, SAMPLED, { temperature: 1, seed: 3 }, { temperature: 0.7, topK: 300, seed: 5 }]
    for (const prompt of [PROMPT, PROMPT.slice(0, 4), [7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26]]) {
      for (const sampling of samplings) {
        const what = `prompt of ${prompt.length}, ${JSON.stringify(sampling)}`
        const onGpu = await encoderDecoderGenerate({ model: encDec, prompt, maxTokens: 16, sampling, backend: gpu })
        const onCpu = await encoderDecoderGenerate({ model: encDec, prompt, maxTokens: 16, sampling, backend: cpu })
        expect(onGpu.tokens, what).toEqual(onCpu.tokens)
        expect(onGpu.finishReason, what).toBe(onCpu.finishReason)
        closeToCpu(onGpu.memory, onCpu.memory, `${what}: memory`)
        onGpu.logits.forEach((l, i) => closeToCpu(l, onCpu.logits[i], `${what}: step ${i}`))
      }
    }
  }, 60_000)

  for (const [label, sampling] of [['greedy', {}], ['sampled', SAMPLED]] as Array<[string, SamplingParams]>) {
    it(`a decoder cut into 2 and 3 WebGPU stages gives the WebGPU reference's logits and tokens bit for bit (${label})`, async () => {
      const ref = await encoderDecoderGenerate({ model: encDec, prompt: PROMPT, maxTokens: 16, sampling, backend: gpu })
      expect(ref.tokens.length).toBeGreaterThanOrEqual(4)
      // the memory from an encoder in two WebGPU stages is the reference's
      const [, split] = await encoderChain(gpu, encDec, 'encoder', [[0, 3], [3, 6]], { tokens: PROMPT })
      if (!('hidden' in split)) throw new Error('memory')
      expect(firstDiff(split.hidden, ref.memory)).toBe(-1)
      for (const cut of [...cuts(6, 2), ...cuts(6, 3)]) {
        const stages = await decoderChain(gpu, cut)
        const got = await decode(stages, split, 16, sampling)
        expect(got.tokens, JSON.stringify(cut)).toEqual(ref.tokens)
        expect(got.logits.length).toBe(ref.logits.length)
        got.logits.forEach((l, i) => expect(firstDiff(l, ref.logits[i]), `${JSON.stringify(cut)} step ${i}`).toBe(-1))
        for (const s of stages) await s.close()
      }
    }, 60_000)
  }

  it('createStage with crossAttention and the renamed tensors is the same stage as createDecoderStage', async () => {
    const ref = await encoderDecoderGenerate({ model: encDec, prompt: PROMPT, maxTokens: 8, backend: gpu })
    const stage = await gpu.createStage({ config: decoderModelConfig(config), layers: [0, 3], tensors: decoderTensorSource(encDec.tensors), crossAttention: { dim: config.encoder.dim } }) as DecoderStage
    const got = await decode([stage], { hidden: ref.memory, n: ref.memoryLength }, 8, {})
    expect(got.tokens).toEqual(ref.tokens)
    got.logits.forEach((l, i) => expect(firstDiff(l, ref.logits[i]), `step ${i}`).toBe(-1))
    await stage.close()
    await expect(gpu.createStage({ config: decoderModelConfig(config), layers: [0, 3], tensors: decoderTensorSource(encDec.tensors), crossAttention: { dim: 0 } })).rejects.toMatchObject({ name: 'StageConfigError', message: /crossAttention\.dim/ })
  })

  it('F16 weights: split WebGPU stages give the WebGPU reference\'s bits and the CPU backend\'s tokens', async () => {
    const half = decodeComponentModel(encodeComponentModel(encDec, { dtype: 'F16' }), 'f16')
    expect(half.tensors.get('decoder.layers.0.cross_k')!.dtype).toBe('F16')
    const ref = await encoderDecoderGenerate({ model: half, prompt: PROMPT, maxTokens: 8, backend: gpu })
    const onCpu = await encoderDecoderGenerate({ model: half, prompt: PROMPT, maxTokens: 8, backend: cpu })
    expect(ref.tokens).toEqual(onCpu.tokens)
    ref.logits.forEach((l, i) => closeToCpu(l, onCpu.logits[i], `step ${i}`))
    const [, memory] = await encoderChain(gpu, half, 'encoder', [[0, 1], [1, 6]], { tokens: PROMPT })
    if (!('hidden' in memory)) throw new Error('memory')
    expect(firstDiff(memory.hidden, ref.memory)).toBe(-1)
    const stages = await decoderChain(gpu, [[0, 3], [3, 6]], half)
    const got = await decode(stages, memory, 8, {})
    expect(got.tokens).toEqual(ref.tokens)
    got.logits.forEach((l, i) => expect(firstDiff(l, ref.logits[i]), `step ${i}`).toBe(-1))
    for (const s of stages) await s.close()
  })

  it('prefill equals step-by-step decode, and a batch of sessions with different memories gives each its own result', async () => {
    const a = await encoderDecoderGenerate({ model: encDec, prompt: PROMPT, maxTokens: 8, backend: gpu })
    const b = await encoderDecoderGenerate({ model: encDec, prompt: [3, 4, 5], maxTokens: 8, backend: gpu })
    const stages = await decoderChain(gpu, [[0, 3], [3, 6]])
    const [s0, s1] = stages.map(s => s.createSession())
    s0.setMemory(a.memory, a.memoryLength)
    s1.setMemory(a.memory, a.memoryLength)
    const sequence = [config.decoder.startId!, ...a.tokens.slice(0, -1)]
    const h = await s0.forward({ position: 0, tokens: sequence })
    const out = await s1.forward({ position: 0, hidden: h.hidden! }, { allLogits: true })
    const v = config.vocabSize
    a.logits.slice(0, sequence.length).forEach((l, i) => expect(firstDiff(out.logits!.subarray(i * v, (i + 1) * v), l), `position ${i}`).toBe(-1))
    // one batch, two sessions, two memories (of 12 and 3 positions)
    const sessions: DecoderSession[][] = [a, b].map(r => stages.map(s => { const x = s.createSession(); x.setMemory(r.memory, r.memoryLength); return x }))
    const first = await stages[0].forwardBatch(sessions.map(([x]) => ({ session: x, input: { position: 0, tokens: [config.decoder.startId!] } })))
    const last = await stages[1].forwardBatch(sessions.map(([, y], i) => ({ session: y, input: { position: 0, hidden: (first[i] as PromiseFulfilledResult<StageOutput>).value.hidden! } })))
    expect(firstDiff((last[0] as PromiseFulfilledResult<StageOutput>).value.logits!, a.logits[0])).toBe(-1)
    expect(firstDiff((last[1] as PromiseFulfilledResult<StageOutput>).value.logits!, b.logits[0])).toBe(-1)
    for (const s of stages) await s.close()
  })

  it('a session keeps its memory across truncate, takes another at position 0, drops it on close', async () => {
    const a = await encoderDecoderGenerate({ model: encDec, prompt: PROMPT, maxTokens: 1, backend: gpu })
    const b = await encoderDecoderGenerate({ model: encDec, prompt: [3, 4, 5], maxTokens: 1, backend: gpu })
    const [stage] = await decoderChain(gpu, [[0, 6]])
    const s = stage.createSession()
    expect(s.memoryLength).toBeUndefined()
    s.setMemory(a.memory, a.memoryLength)
    expect(s.memoryLength).toBe(PROMPT.length)
    const start = config.decoder.startId!
    expect(firstDiff((await s.forward({ position: 0, tokens: [start] })).logits!, a.logits[0])).toBe(-1)
    expect(() => s.setMemory(a.memory, a.memoryLength)).toThrow(expect.objectContaining({ name: 'StageInputError' }))
    s.truncate(0)
    expect(firstDiff((await s.forward({ position: 0, tokens: [start] })).logits!, a.logits[0])).toBe(-1)
    s.truncate(0)
    s.setMemory(b.memory, b.memoryLength)
    expect(s.memoryLength).toBe(3)
    expect(firstDiff((await s.forward({ position: 0, tokens: [start] })).logits!, b.logits[0])).toBe(-1)
    s.close()
    expect(s.memoryLength).toBeUndefined()
    await expect(s.forward({ position: 0, tokens: [start] })).rejects.toMatchObject({ name: 'StageInputError', message: /setMemory/ })
    await stage.close()
    expect(() => stage.createSession().setMemory(a.memory, a.memoryLength)).toThrow(expect.objectContaining({ name: 'StageClosedError' }))
  })

  it('forward before setMemory, bad memories and bad ranges are typed errors; sessions of stages without cross-attention have no setMemory', async () => {
    const stage = await gpu.createDecoderStage({ model: config, layers: [0, 3], tensors: encDec.tensors })
    const s = stage.createSession()
    await expect(s.forward({ position: 0, tokens: [1] })).rejects.toMatchObject({ name: 'StageInputError', message: /setMemory/ })
    const batch = await stage.forwardBatch([{ session: s, input: { position: 0, tokens: [1] } }])
    expect(batch[0]).toMatchObject({ status: 'rejected', reason: { name: 'StageInputError' } })
    expect(() => s.setMemory(new Float32Array(48 * 3 - 1), 3)).toThrow(expect.objectContaining({ name: 'StageInputError', message: expect.stringMatching(/144 values, got 143/) }))
    expect(() => s.setMemory(new Float32Array(0), 0)).toThrow(expect.objectContaining({ name: 'StageInputError' }))
    expect(() => s.setMemory(new Float32Array(48).fill(Infinity), 1)).toThrow(expect.objectContaining({ name: 'NonFiniteActivationError' }))
    expect(s.memoryLength).toBeUndefined()
    await stage.close()
    const decoder = async (init: Partial<Parameters<typeof gpu.createDecoderStage>[0]>): Promise<DecoderStage> => await gpu.createDecoderStage({ model: config, layers: [0, 3], tensors: encDec.tensors, ...init })
    await expect(decoder({ layers: [0, 4] })).rejects.toMatchObject({ name: 'StageConfigError' })
    await expect(decoder({ model: twoTower.config as never })).rejects.toMatchObject({ name: 'StageConfigError', message: /only an encoder_decoder/ })
    const noCross = new Map(encDec.tensors)
    noCross.delete('decoder.layers.1.cross_k')
    await expect(decoder({ tensors: noCross })).rejects.toMatchObject({ name: 'MissingFieldError', message: /decoder\.layers\.1\.cross_k/ })
    // a feed-forward-only stage of layer 1 needs no attention or cross-attention weights, and its sessions still take the memory
    const mlp = await decoder({ units: [3, 4], tensors: noCross })
    expect(typeof mlp.createSession().setMemory).toBe('function')
    await mlp.close()
    const plain = await gpu.createStage({ config: decoderModelConfig(config), layers: [0, 1], head: false, tensors: decoderTensorSource(encDec.tensors) })
    expect(typeof (plain.createSession() as Partial<DecoderSession>).setMemory).toBe('undefined')
    await plain.close()
  })
})
