import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { cpuBackend, evenRanges, generate } from '@shardmesh/engine'
import { createTokenizer, layerManifest, partBytes, partsForStage, partTensors, syntheticModel, SYNTHETIC_PRESETS } from '@shardmesh/model'
import type { Tensor } from '@shardmesh/model'
import { loadModel } from '@shardmesh/model/node'
import type { Checkpoint } from '@shardmesh/model'
import { storiesDir } from '../fixtures.ts'

const models: Array<[string, () => Promise<Checkpoint>]> = [
  ['stories260K', async () => await loadModel(join(storiesDir(), 'stories260K.gguf'))],
  ['synthetic tiny-gqa2', async () => syntheticModel(SYNTHETIC_PRESETS['tiny-gqa2'])],
  ['synthetic tiny-gqa4-untied', async () => syntheticModel(SYNTHETIC_PRESETS['tiny-gqa4-untied'])]
]

async function run (model: Checkpoint, nStages: number, prompt: string, sampling: { temperature: number, seed: number }, threads = 1): Promise<number[]> {
  const backend = cpuBackend({ threads })
  const stages = await Promise.all(evenRanges(model.config.nLayers, nStages).map(layers =>
    backend.createStage({ config: model.config, layers, tensors: model.tensors })))
  const result = await generate({
    sessions: stages.map(s => s.createSession()),
    promptTokens: createTokenizer(model.tokenizer!).encode(prompt),
    maxTokens: 40,
    contextLength: model.config.contextLength,
    sampling
  })
  await Promise.all(stages.map(async s => { await s.close() }))
  return result.tokens
}

describe.each(models)('%s split into stages', (_name, load) => {
  it.each([
    ['greedy', { temperature: 0, seed: 0 }],
    ['sampled at T=0.9', { temperature: 0.9, seed: 1234 }]
  ])('gives the single-stage tokens for 2, 3 and n_layers stages (%s)', async (_label, sampling) => {
    const model = await load()
    const single = await run(model, 1, 'Once upon a time', sampling)
    expect(single.length).toBe(40)
    const counts = [...new Set([2, 3, model.config.nLayers])].filter(k => k <= model.config.nLayers)
    for (const k of counts) expect(await run(model, k, 'Once upon a time', sampling), `${k} stages`).toEqual(single)
  })

})

describe('matmuls split over 2 threads', () => {
  it('give the single-thread tokens', async () => {
    // large enough that decode matmuls pass the threading threshold (THREAD_MIN_MACS)
    const model = syntheticModel({ dim: 512, hiddenDim: 1024, nLayers: 2, nHeads: 8, nKvHeads: 4, vocabSize: 1024, seed: 3 })
    const sampling = { temperature: 0.8, seed: 5 }
    expect(await run(model, 2, 'Once upon a time', sampling, 2)).toEqual(await run(model, 1, 'Once upon a time', sampling))
  })
})

describe('stages built from manifest parts', () => {
  it('give the tokens of stages built from the whole checkpoint', async () => {
    const model = syntheticModel(SYNTHETIC_PRESETS['tiny-gqa4-untied'])
    const manifest = layerManifest(model)
    const backend = cpuBackend()
    const stages = await Promise.all(evenRanges(model.config.nLayers, 3).map(async layers => {
      // only the bytes of the parts this stage needs, as a peer would fetch them
      const tensors = new Map<string, Tensor>()
      for (const part of partsForStage(manifest, layers)) for (const t of partTensors(part, partBytes(model, part).slice())) tensors.set(t.name, t)
      return await backend.createStage({ config: manifest.config, layers, tensors })
    }))
    const result = await generate({
      sessions: stages.map(s => s.createSession()),
      promptTokens: createTokenizer(model.tokenizer!).encode('Once upon a time'),
      maxTokens: 40,
      contextLength: model.config.contextLength
    })
    expect(result.tokens).toEqual(await run(model, 1, 'Once upon a time', { temperature: 0, seed: 0 }))
  })
})
