// Models made of parts: encoder components (CLIP-style towers, a T5/Whisper-style encoder)
// cut into stages must give the whole component's hidden states and embeddings bit for bit;
// a decoder cut into stages, each cross-attending to the memory set on its session, the
// single-process reference's logits and tokens; and everything must agree with a plain
// float64 forward pass written from the model description (components-reference.ts).
import { describe, expect, it } from 'vitest'
import { decodeComponentModel, decoderModelConfig, encodeComponentModel, syntheticEncoderDecoder } from '@shardmesh/model'
import type { ModelConfig, Tensor } from '@shardmesh/model'
import { cpuBackend, encoderDecoderGenerate, forwardChain, fuseTowers } from '../src/index.ts'
import type { DecoderSession, DecoderStage, EncoderComponent, EncoderStage, SamplingParams, StageOutput } from '../src/index.ts'
import { referenceDecoderLogits, referenceMemory, referenceTower, rowsOf } from './components-reference.ts'
import { cuts, decode, decoderChain, encDec, encoderChain, ENCODERS, firstDiff, nLayersOf, pixelsOf, PROMPT, TEXT, twoTower, valuesOf } from './components-fixture.ts'

const backend = cpuBackend()

const closeTo = (got: ArrayLike<number>, want: ArrayLike<number>, what: string): void => {
  const scale = Math.max(1, ...Array.from(want, Math.abs))
  let worst = 0
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]))
  expect(got.length, what).toBe(want.length)
  expect(worst / scale, what).toBeLessThan(1e-4)
}

describe('encoder stages', () => {
  for (const [model, component, input] of ENCODERS) {
    it(`${component}: every cut into 2 and 3 stages gives the whole component's output, and the hidden states at each cut, bit for bit`, async () => {
      const units = 2 * nLayersOf(model, component)
      const [whole] = await encoderChain(backend, model, component, [[0, units]], input)
      // the residual stream after every unit, from one stage per unit
      const singles = await encoderChain(backend, model, component, Array.from({ length: units }, (_, u): [number, number] => [u, u + 1]), input)
      expect(firstDiff(valuesOf(singles[units - 1]), valuesOf(whole)), 'one stage per unit').toBe(-1)
      for (const cut of [...cuts(units, 2), ...cuts(units, 3)]) {
        const outs = await encoderChain(backend, model, component, cut, input)
        outs.forEach((out, i) => {
          expect(firstDiff(valuesOf(out), valuesOf(singles[cut[i][1] - 1])), `${JSON.stringify(cut)}: stage ${i}`).toBe(-1)
        })
      }
      // stages over whole layers (no units) are the same stages
      const byLayers = await backend.createEncoderStage({ model: model.config, component, layers: [0, units / 2], tensors: model.tensors })
      expect([byLayers.units, byLayers.embed, byLayers.pool]).toEqual([[0, units], true, true])
      expect(firstDiff(valuesOf(await byLayers.forward(input)), valuesOf(whole))).toBe(-1)
      await byLayers.close()
    })
  }

  it('towers agree with the float64 reference: embeddings and their cosine', async () => {
    const [text] = await encoderChain(backend, twoTower, 'text', [[0, 6]], { tokens: TEXT })
    const [image] = await encoderChain(backend, twoTower, 'image', [[0, 6]], { pixels: pixelsOf(5) })
    if (!('embedding' in text) || !('embedding' in image)) throw new Error('towers give embeddings')
    expect(text.embedding.length).toBe(32)
    const refText = referenceTower(twoTower, 'text', TEXT)
    const refImage = referenceTower(twoTower, 'image', pixelsOf(5))
    closeTo(text.embedding, refText, 'text embedding')
    closeTo(image.embedding, refImage, 'image embedding')
    const norm = (v: number[]): number => Math.sqrt(v.reduce((a, x) => a + x * x, 0))
    const cosine = refText.reduce((a, x, i) => a + x * refImage[i], 0) / (norm(refText) * norm(refImage))
    expect(fuseTowers(text.embedding, image.embedding).similarity).toBeCloseTo(cosine, 5)
  })

  it('the encoder\'s memory agrees with the float64 reference', async () => {
    const [out] = await encoderChain(backend, encDec, 'encoder', [[0, 6]], { tokens: PROMPT })
    if (!('hidden' in out)) throw new Error('the encoder gives its memory')
    expect(out.n).toBe(PROMPT.length)
    closeTo(out.hidden, referenceMemory(encDec, PROMPT).flat(), 'memory')
  })

  it('a causal tower runs the Llama stage\'s block math: its hidden states are the Llama stage\'s bit for bit', async () => {
    if (twoTower.config.kind !== 'two_tower') throw new Error('kind')
    const t = twoTower.config.text
    const config: ModelConfig = { architecture: 'llama', name: 'text-as-llama', ...t, vocabSize: t.vocabSize, ropeLayout: 'half', tiedEmbeddings: false, bosId: 1, eosId: 2, stopIds: [] }
    const llamaNames = {
      get: (name: string): Tensor | undefined => twoTower.tensors.get(name === 'tok_embeddings' ? 'text.embed' : 'text.' + name.replace('attention_norm', 'attn_norm'))
    }
    // the tower's stages before its last (which pools) emit the residual stream, as a Llama stage without its head
    for (const layers of [[0, 1], [0, 2]] as Array<[number, number]>) {
      const llama = await backend.createStage({ config, layers, tensors: llamaNames, head: false })
      const got = await llama.createSession().forward({ position: 0, tokens: TEXT })
      const [tower] = await encoderChain(backend, twoTower, 'text', [[0, 2 * layers[1]]], { tokens: TEXT })
      expect(firstDiff(got.hidden!, valuesOf(tower)), `layers ${JSON.stringify(layers)}`).toBe(-1)
      await llama.close()
    }
  })
})

describe('fuseTowers', () => {
  it('normalizes both embeddings and gives their cosine in [-1, 1]', () => {
    const a = Float32Array.from({ length: 32 }, (_, i) => Math.sin(i + 1))
    const b = Float32Array.from({ length: 32 }, (_, i) => Math.cos(3 * i))
    const f = fuseTowers(a, b)
    const dot = (x: Float32Array, y: Float32Array): number => x.reduce((s, v, i) => s + v * y[i], 0)
    expect(dot(f.textEmbedding, f.textEmbedding)).toBeCloseTo(1, 6)
    expect(dot(f.imageEmbedding, f.imageEmbedding)).toBeCloseTo(1, 6)
    expect(f.similarity).toBeGreaterThanOrEqual(-1)
    expect(f.similarity).toBeLessThanOrEqual(1)
    expect(f.similarity).toBeCloseTo(dot(f.textEmbedding, f.imageEmbedding), 6)
    expect(fuseTowers(b, a).similarity).toBe(f.similarity)
    expect(fuseTowers(a.map(v => 7 * v), b).similarity).toBeCloseTo(f.similarity, 6)
    expect(fuseTowers(a, a).similarity).toBeCloseTo(1, 12)
    expect(fuseTowers(a, a.map(v => -v)).similarity).toBeCloseTo(-1, 12)
    expect(() => fuseTowers(a, b.subarray(1))).toThrow(expect.objectContaining({ name: 'StageInputError' }))
    expect(() => fuseTowers(a, new Float32Array(32))).toThrow(expect.objectContaining({ name: 'StageInputError' }))
    expect(() => fuseTowers(a, b.map((v, i) => i === 3 ? NaN : v))).toThrow(expect.objectContaining({ name: 'NonFiniteActivationError' }))
  })
})

describe('encoder–decoder', () => {
  const config = encDec.config.kind === 'encoder_decoder' ? encDec.config : undefined!
  const memoryOf = async (prompt: number[]): Promise<{ hidden: Float32Array, n: number }> => {
    const [out] = await encoderChain(backend, encDec, 'encoder', [[0, 6]], { tokens: prompt })
    if (!('hidden' in out)) throw new Error('memory')
    return out
  }

  it('the reference agrees with the float64 forward pass, and its output depends on the memory', async () => {
    const ref = await encoderDecoderGenerate({ model: encDec, prompt: PROMPT, maxTokens: 16 })
    expect(ref.tokens.length).toBeGreaterThanOrEqual(4)
    const memory = rowsOf(Array.from(ref.memory), config.encoder.dim)
    closeTo(ref.memory, referenceMemory(encDec, PROMPT).flat(), 'memory')
    const sequence = [config.decoder.startId!, ...ref.tokens]
    for (let i = 0; i < Math.min(6, ref.logits.length); i++) {
      closeTo(ref.logits[i], referenceDecoderLogits(encDec, memory, sequence.slice(0, i + 1)), `step ${i}`)
    }
    const other = await encoderDecoderGenerate({ model: encDec, prompt: PROMPT.slice(0, 7), maxTokens: 1 })
    expect(firstDiff(other.logits[0], ref.logits[0])).not.toBe(-1)
  })

  for (const [label, sampling] of [['greedy', {}], ['sampled', { temperature: 0.9, topK: 40, topP: 0.95, seed: 7 }]] as Array<[string, SamplingParams]>) {
    it(`a decoder cut into 2 and 3 stages gives the reference's logits and tokens bit for bit (${label})`, async () => {
      const ref = await encoderDecoderGenerate({ model: encDec, prompt: PROMPT, maxTokens: 16, sampling })
      // the memory from an encoder in two stages is the reference's
      const [, split] = await encoderChain(backend, encDec, 'encoder', [[0, 3], [3, 6]], { tokens: PROMPT })
      if (!('hidden' in split)) throw new Error('memory')
      expect(firstDiff(split.hidden, ref.memory)).toBe(-1)
      const all = [...cuts(6, 2), ...cuts(6, 3)]
      expect(all.filter(c => c.every(([a, b]) => a % 2 === 0 && b % 2 === 0)).length).toBe(3) // [0,1)[1,3), [0,2)[2,3), [0,1)[1,2)[2,3) in layers
      for (const cut of all) {
        const stages = await decoderChain(backend, cut)
        const got = await decode(stages, split, 16, sampling)
        expect(got.tokens, JSON.stringify(cut)).toEqual(ref.tokens)
        expect(got.logits.length).toBe(ref.logits.length)
        got.logits.forEach((l, i) => expect(firstDiff(l, ref.logits[i]), `${JSON.stringify(cut)} step ${i}`).toBe(-1))
        for (const s of stages) await s.close()
      }
    })
  }

  it('F16 weights (as saved with dtype F16): split stages still give the reference\'s bits, close to the F32 model\'s', async () => {
    const half = decodeComponentModel(encodeComponentModel(encDec, { dtype: 'F16' }), 'f16')
    expect(half.tensors.get('decoder.layers.0.cross_k')!.dtype).toBe('F16')
    const ref = await encoderDecoderGenerate({ model: half, prompt: PROMPT, maxTokens: 6 })
    const f32 = await encoderDecoderGenerate({ model: encDec, prompt: PROMPT, maxTokens: 1 })
    expect(Math.max(...ref.logits[0].map((x, i) => Math.abs(x - f32.logits[0][i])))).toBeLessThan(0.1)
    const [, memory] = await encoderChain(backend, half, 'encoder', [[0, 1], [1, 6]], { tokens: PROMPT })
    if (!('hidden' in memory)) throw new Error('memory')
    expect(firstDiff(memory.hidden, ref.memory)).toBe(-1)
    const stages: DecoderStage[] = []
    for (const units of [[0, 3], [3, 6]] as Array<[number, number]>) stages.push(await backend.createDecoderStage({ model: config, layers: [0, 0], units, tensors: half.tensors }))
    const got = await decode(stages, memory, 6, {})
    expect(got.tokens).toEqual(ref.tokens)
    got.logits.forEach((l, i) => expect(firstDiff(l, ref.logits[i]), `step ${i}`).toBe(-1))
    for (const s of stages) await s.close()
  })

  it('prefill equals step-by-step decode, and a batch of sessions with different memories gives each its own result', async () => {
    const a = await encoderDecoderGenerate({ model: encDec, prompt: PROMPT, maxTokens: 8 })
    const b = await encoderDecoderGenerate({ model: encDec, prompt: [3, 4, 5], maxTokens: 8 })
    const stages = await decoderChain(backend, [[0, 3], [3, 6]])
    const [s0, s1] = stages.map(s => s.createSession())
    s0.setMemory(a.memory, a.memoryLength)
    s1.setMemory(a.memory, a.memoryLength)
    const sequence = [config.decoder.startId!, ...a.tokens.slice(0, -1)]
    const h = await s0.forward({ position: 0, tokens: sequence })
    const out = await s1.forward({ position: 0, hidden: h.hidden! }, { allLogits: true })
    const v = config.vocabSize
    a.logits.slice(0, sequence.length).forEach((l, i) => expect(firstDiff(out.logits!.subarray(i * v, (i + 1) * v), l), `position ${i}`).toBe(-1))
    // one batch, two sessions, two memories
    const sessions: DecoderSession[][] = [a, b].map(r => stages.map(s => { const x = s.createSession(); x.setMemory(r.memory, r.memoryLength); return x }))
    const first = await stages[0].forwardBatch(sessions.map(([x]) => ({ session: x, input: { position: 0, tokens: [config.decoder.startId!] } })))
    const last = await stages[1].forwardBatch(sessions.map(([, y], i) => ({ session: y, input: { position: 0, hidden: (first[i] as PromiseFulfilledResult<StageOutput>).value.hidden! } })))
    expect(firstDiff((last[0] as PromiseFulfilledResult<StageOutput>).value.logits!, a.logits[0])).toBe(-1)
    expect(firstDiff((last[1] as PromiseFulfilledResult<StageOutput>).value.logits!, b.logits[0])).toBe(-1)
    for (const s of stages) await s.close()
  })

  it('a session keeps its memory across truncate, drops it on close, and a memory is set only at position 0', async () => {
    const memory = await memoryOf(PROMPT)
    const [stage] = await decoderChain(backend, [[0, 6]])
    const s = stage.createSession()
    expect(s.memoryLength).toBeUndefined()
    s.setMemory(memory.hidden, memory.n)
    expect(s.memoryLength).toBe(PROMPT.length)
    const one = await s.forward({ position: 0, tokens: [1] })
    expect(() => s.setMemory(memory.hidden, memory.n)).toThrow(expect.objectContaining({ name: 'StageInputError' }))
    s.truncate(0)
    expect(firstDiff((await s.forward({ position: 0, tokens: [1] })).logits!, one.logits!)).toBe(-1)
    s.close()
    expect(s.memoryLength).toBeUndefined()
    await expect(s.forward({ position: 0, tokens: [1] })).rejects.toMatchObject({ name: 'StageInputError', message: /setMemory/ })
    await stage.close()
  })
})

describe('threads', () => {
  it('with matmuls above the threading threshold, 2 threads give the 1-thread bits (encoder memory, cross K/V, decoder prefill)', async () => {
    const wide = syntheticEncoderDecoder({ seed: 3, encoder: { dim: 128, hiddenDim: 512, nHeads: 4, nKvHeads: 2 }, decoder: { dim: 128, hiddenDim: 512, nHeads: 4, nKvHeads: 2 } })
    if (wide.config.kind !== 'encoder_decoder') throw new Error('kind')
    const prompt = Array.from({ length: 32 }, (_, i) => (i * 37 + 5) % 200)
    const sequence = [1, ...prompt.slice(0, 15)]
    const run = async (threads: number): Promise<{ memory: Float32Array, logits: Float32Array }> => {
      const b = cpuBackend({ threads })
      const encoder = await b.createEncoderStage({ model: wide.config, component: 'encoder', layers: [0, 3], tensors: wide.tensors })
      const memory = await encoder.forward({ tokens: prompt })
      if (!('hidden' in memory)) throw new Error('memory')
      const stages = [await b.createDecoderStage({ model: wide.config as never, layers: [0, 2], tensors: wide.tensors }), await b.createDecoderStage({ model: wide.config as never, layers: [2, 3], tensors: wide.tensors })]
      const sessions = stages.map(s => { const x = s.createSession(); x.setMemory(memory.hidden, memory.n); return x })
      const out = await forwardChain(sessions, 0, sequence, { allLogits: true })
      for (const s of [encoder, ...stages]) await s.close()
      return { memory: memory.hidden, logits: out.logits! }
    }
    const one = await run(1)
    const two = await run(2)
    expect(firstDiff(two.memory, one.memory)).toBe(-1)
    expect(firstDiff(two.logits, one.logits)).toBe(-1)
  })
})

describe('bad inputs and ranges are typed errors', () => {
  const encConfig = encDec.config.kind === 'encoder_decoder' ? encDec.config : undefined!

  it('encoder stages: wrong kind, length or ids of input; too many positions; closed', async () => {
    const text = await backend.createEncoderStage({ model: twoTower.config, component: 'text', layers: [0, 3], tensors: twoTower.tensors })
    const image = await backend.createEncoderStage({ model: twoTower.config, component: 'image', layers: [0, 2], tensors: twoTower.tensors })
    const middle = await backend.createEncoderStage({ model: twoTower.config, component: 'image', layers: [1, 3], tensors: twoTower.tensors })
    const rejects = async (p: Promise<unknown>, name: string, message: RegExp): Promise<void> => { await expect(p).rejects.toMatchObject({ name, message: expect.stringMatching(message) }) }
    await rejects(image.forward({ pixels: new Float32Array(16 * 16 * 3 - 1) }), 'StageInputError', /16×16×3 = 768/)
    await rejects(image.forward({ pixels: pixelsOf(1).map((v, i) => i === 9 ? Infinity : v) }), 'StageInputError', /pixel value 9/)
    await rejects(image.forward({ tokens: [1, 2] }), 'StageInputError', /takes pixels/)
    await rejects(text.forward({ pixels: pixelsOf(1) }), 'StageInputError', /takes token ids/)
    await rejects(text.forward({ tokens: [1, 200] }), 'StageInputError', /token id 200 at input index 1 is outside the vocabulary \[0, 200\)/)
    await rejects(text.forward({ tokens: [1, 2.5] }), 'StageInputError', /token id 2.5/)
    await rejects(text.forward({ tokens: [] }), 'StageInputError', /no positions/)
    await rejects(text.forward({ tokens: new Array(33).fill(1) }), 'ContextLengthError', /33 positions exceed the context length 32/)
    await rejects(text.forward({ hidden: new Float32Array(48), n: 1 }), 'StageInputError', /embeds token ids/)
    await rejects(middle.forward({ pixels: pixelsOf(1) }), 'StageInputError', /takes hidden states/)
    await rejects(middle.forward({ hidden: new Float32Array(40 * 15), n: 15 }), 'StageInputError', /16 patches/)
    await rejects(middle.forward({ hidden: new Float32Array(40 * 16), n: 15 }), 'StageInputError', /have 600 values, got 640/)
    await rejects(middle.forward({ hidden: new Float32Array(40 * 16).fill(NaN), n: 16 }), 'NonFiniteActivationError', /position 0/)
    // a rejected input leaves the stage working
    const out = await image.forward({ pixels: pixelsOf(1) })
    expect('hidden' in out && out.n).toBe(16)
    await text.close()
    await rejects(text.forward({ tokens: [1] }), 'StageClosedError', /closed/)
    await image.close()
    await middle.close()
  })

  it('bad ranges, components and tensors', async () => {
    const make = async (init: Partial<Parameters<typeof backend.createEncoderStage>[0]>): Promise<unknown> => await backend.createEncoderStage({ model: twoTower.config, component: 'text', layers: [0, 3], tensors: twoTower.tensors, ...init })
    for (const layers of [[2, 1], [0, 4], [-1, 2], [0.5, 2]] as Array<[number, number]>) {
      await expect(make({ layers }), JSON.stringify(layers)).rejects.toMatchObject({ name: 'StageConfigError' })
    }
    await expect(make({ units: [3, 3] })).rejects.toMatchObject({ name: 'StageConfigError', message: /empty/ })
    await expect(make({ units: [0, 7] })).rejects.toMatchObject({ name: 'StageConfigError' })
    await expect(make({ component: 'encoder' })).rejects.toMatchObject({ name: 'StageConfigError', message: /no component encoder/ })
    await expect(make({ component: 'decoder' as EncoderComponent })).rejects.toMatchObject({ name: 'StageConfigError', message: /not an encoder component/ })
    const missing = new Map(twoTower.tensors)
    missing.delete('text.layers.2.w3')
    await expect(make({ tensors: missing })).rejects.toMatchObject({ name: 'MissingFieldError', message: /text\.layers\.2\.w3/ })
    // a stage reads only its own tensors: layers [0, 2) do not need layer 2 or the head
    missing.delete('text.proj')
    await (await make({ layers: [0, 2], tensors: missing }) as EncoderStage).close()
    const wrong = new Map(twoTower.tensors)
    wrong.set('text.layers.0.wq', { ...wrong.get('text.layers.0.wk')!, name: 'text.layers.0.wq' })
    await expect(make({ tensors: wrong })).rejects.toMatchObject({ name: 'StageConfigError', message: /text\.layers\.0\.wq has shape \[24, 48\]/ })

    const decoder = async (init: Partial<Parameters<typeof backend.createDecoderStage>[0]>): Promise<unknown> => await backend.createDecoderStage({ model: encConfig, layers: [0, 3], tensors: encDec.tensors, ...init })
    await expect(decoder({ layers: [0, 4] })).rejects.toMatchObject({ name: 'StageConfigError' })
    await expect(decoder({ layers: [2, 1] })).rejects.toMatchObject({ name: 'StageConfigError' })
    await expect(decoder({ model: twoTower.config as never })).rejects.toMatchObject({ name: 'StageConfigError', message: /only an encoder_decoder/ })
    const noCross = new Map(encDec.tensors)
    noCross.delete('decoder.layers.1.cross_k')
    await expect(decoder({ tensors: noCross })).rejects.toMatchObject({ name: 'MissingFieldError', message: /decoder\.layers\.1\.cross_k/ })
    // a feed-forward-only stage of layer 1 needs no attention or cross-attention weights
    await (await decoder({ units: [3, 4], tensors: noCross }) as DecoderStage).close()
  })

  it('decoder sessions: forward before setMemory, bad memories; sessions of stages without cross-attention have no setMemory', async () => {
    const stage = await backend.createDecoderStage({ model: encConfig, layers: [0, 3], tensors: encDec.tensors })
    const s = stage.createSession()
    await expect(s.forward({ position: 0, tokens: [1] })).rejects.toMatchObject({ name: 'StageInputError', message: /setMemory/ })
    const batch = await stage.forwardBatch([{ session: s, input: { position: 0, tokens: [1] } }])
    expect(batch[0]).toMatchObject({ status: 'rejected', reason: { name: 'StageInputError' } })
    expect(() => s.setMemory(new Float32Array(48 * 3 - 1), 3)).toThrow(expect.objectContaining({ name: 'StageInputError', message: expect.stringMatching(/144 values, got 143/) }))
    expect(() => s.setMemory(new Float32Array(0), 0)).toThrow(expect.objectContaining({ name: 'StageInputError' }))
    expect(() => s.setMemory(new Float32Array(48).fill(Infinity), 1)).toThrow(expect.objectContaining({ name: 'NonFiniteActivationError' }))
    expect(s.memoryLength).toBeUndefined()
    await stage.close()
    const plain = await backend.createStage({ config: decoderModelConfig(encConfig), layers: [0, 1], head: false, tensors: { get: (n: string) => encDec.tensors.get(n === 'tok_embeddings' ? 'decoder.embed' : 'decoder.' + n.replace('attention_norm', 'attn_norm')) } })
    // only sessions of stages with cross-attention take a memory: a caller (the stage server) tells them by setMemory
    expect(typeof (plain.createSession() as Partial<DecoderSession>).setMemory).toBe('undefined')
    expect(typeof stage.createSession().setMemory).toBe('function')
    await plain.close()
  })
})
