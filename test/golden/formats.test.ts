import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { cpuBackend, generate } from '@shardmesh/engine'
import { createTokenizer, quantizeCheckpoint, syntheticModel, SYNTHETIC_PRESETS, writeGguf } from '@shardmesh/model'
import type { Checkpoint } from '@shardmesh/model'
import { loadModel, writeSafetensorsModel } from '@shardmesh/model/node'

async function tokens (model: Checkpoint, prompt: string, n = 32): Promise<number[]> {
  const stage = await cpuBackend().createStage({ config: model.config, layers: [0, model.config.nLayers], tensors: model.tensors })
  const result = await generate({
    sessions: [stage.createSession()],
    promptTokens: createTokenizer(model.tokenizer!).encode(prompt),
    maxTokens: n,
    contextLength: model.config.contextLength
  })
  return result.tokens
}

async function promptLogits (model: Checkpoint): Promise<Float32Array> {
  const stage = await cpuBackend().createStage({ config: model.config, layers: [0, model.config.nLayers], tensors: model.tensors })
  const out = await stage.createSession().forward({ position: 0, tokens: createTokenizer(model.tokenizer!).encode('the cat') }, { allLogits: true })
  return out.logits!
}

function cosine (a: Float32Array, b: Float32Array): number {
  let ab = 0; let aa = 0; let bb = 0
  for (let i = 0; i < a.length; i++) { ab += a[i] * b[i]; aa += a[i] * a[i]; bb += b[i] * b[i] }
  return ab / Math.sqrt(aa * bb)
}

describe.each(['tiny-gqa2', 'tiny-gqa4-untied', 'tiny-mha-odd'] as const)('synthetic %s through every file format', preset => {
  it('gives the same tokens from memory (half RoPE), GGUF (interleaved, Q/K permuted) and safetensors', async () => {
    const original = syntheticModel(SYNTHETIC_PRESETS[preset])
    expect(original.config.ropeLayout).toBe('half')
    const dir = await mkdtemp(join(tmpdir(), 'shardmesh-formats-'))
    await writeFile(join(dir, 'model.gguf'), writeGguf(original))
    const gguf = await loadModel(join(dir, 'model.gguf'))
    expect(gguf.config.ropeLayout).toBe('interleaved')
    await writeSafetensorsModel(gguf, join(dir, 'hf'))
    const hf = await loadModel(join(dir, 'hf'), { tokenizerPath: join(dir, 'model.gguf') })
    expect(hf.config.ropeLayout).toBe('half')

    const want = await tokens(original, 'Once upon a time')
    expect(new Set(want).size).toBeGreaterThan(3)
    expect(await tokens(gguf, 'Once upon a time')).toEqual(want)
    expect(await tokens(hf, 'Once upon a time')).toEqual(want)
  })
})

describe('quantized GGUF files', () => {
  it('run Q8_0 and Q4_0 matrices straight from the file and track the F32 model', async () => {
    // dims that are whole blocks of 32, so every matrix quantizes
    const f32 = syntheticModel({ dim: 64, hiddenDim: 128, nLayers: 2, nHeads: 4, nKvHeads: 2, vocabSize: 512, seed: 9 })
    const dir = await mkdtemp(join(tmpdir(), 'shardmesh-quant-'))
    const want = await tokens(f32, 'the cat', 12)
    for (const dtype of ['Q8_0', 'Q4_0'] as const) {
      await writeFile(join(dir, `${dtype}.gguf`), writeGguf(f32, { matrixType: dtype }))
      const q = await loadModel(join(dir, `${dtype}.gguf`))
      expect(q.tensors.get('layers.0.wq')!.dtype).toBe(dtype)
      // loading from the file and quantizing in memory give the same tokens
      expect(await tokens(q, 'the cat', 12)).toEqual(await tokens(quantizeCheckpoint(f32, dtype), 'the cat', 12))
      // the logits of the prompt stay close to the F32 model's (cosine similarity)
      const [a, b] = [await promptLogits(f32), await promptLogits(q)]
      expect(cosine(a, b), dtype).toBeGreaterThan(dtype === 'Q8_0' ? 0.999 : 0.95) // Q4_0 measured 0.968 on this model
      if (dtype === 'Q8_0') expect(await tokens(q, 'the cat', 12)).toEqual(want)
    }
  })
})
