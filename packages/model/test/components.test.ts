import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  componentModelShapes, componentNames, componentPartSizes, componentTensorShapes, decodeComponentModel, decoderModelConfig,
  encodeComponentModel, encodeSafetensors, f16ToF32, f32ToF16, syntheticEncoderDecoder, syntheticTwoTower, toFloat32
} from '../src/index.ts'
import type { ComponentModel, Tensor } from '../src/index.ts'
import { loadComponentModel, saveComponentModel } from '../src/node.ts'

let dir: string
beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'shardmesh-components-')) })
afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

const MODELS = { 'two-tower': syntheticTwoTower, 'encoder-decoder': syntheticEncoderDecoder } as const

/** The model's files with `edit` applied to the parsed config and/or the tensor map, decoded again. */
function edited (model: ComponentModel, edit: { config?: (c: Record<string, any>) => void, tensors?: (t: Map<string, Tensor>) => void }): () => ComponentModel {
  const files = encodeComponentModel(model)
  const config = JSON.parse(files.config) as Record<string, any>
  edit.config?.(config)
  const tensors = new Map(model.tensors)
  edit.tensors?.(tensors)
  return () => decodeComponentModel({ config: JSON.stringify(config), safetensors: encodeSafetensors(tensors.values()) }, 'edited')
}

const errorName = (f: () => unknown): string => {
  try { f() } catch (err) { return (err as Error).name }
  return 'no error'
}

describe('synthetic component models', () => {
  it('are deterministic per seed and have every tensor of their config', () => {
    for (const make of Object.values(MODELS)) {
      const a = make()
      const b = make()
      const c = make({ seed: 2 })
      expect([...a.tensors.keys()]).toEqual([...componentModelShapes(a.config).keys()])
      for (const [name, t] of a.tensors) {
        expect(t.shape).toEqual(componentModelShapes(a.config).get(name)!.shape)
        expect(Buffer.compare(t.data, b.tensors.get(name)!.data), name).toBe(0)
        expect(Buffer.compare(t.data, c.tensors.get(name)!.data), name).not.toBe(0)
      }
    }
  })

  it('are small and scaled like syntheticModel', () => {
    const tt = syntheticTwoTower()
    expect(componentNames(tt.config)).toEqual(['text', 'image'])
    expect(tt.config.kind === 'two_tower' && tt.config.image.imageSize / tt.config.image.patchSize).toBe(4)
    const ed = syntheticEncoderDecoder()
    expect(componentNames(ed.config)).toEqual(['encoder', 'decoder'])
    const std = (t: Tensor): number => { const v = toFloat32(t); return Math.sqrt(v.reduce((s, x) => s + x * x, 0) / v.length) }
    // token embeddings and the LM head: 3/√dim; projections 1/√fan_in; norms ≈ 1
    expect(std(ed.tensors.get('decoder.head')!)).toBeCloseTo(3 / Math.sqrt(40), 1)
    expect(std(ed.tensors.get('decoder.layers.0.cross_k')!)).toBeCloseTo(1 / Math.sqrt(48), 1)
    expect(std(tt.tensors.get('image.patch_embed')!)).toBeCloseTo(1 / Math.sqrt(48), 1)
    expect(std(tt.tensors.get('text.final_norm')!)).toBeCloseTo(1, 1)
  })

  it('take overrides per component, with headDim following dim / nHeads', () => {
    const m = syntheticEncoderDecoder({ vocabSize: 64, encoder: { dim: 32, nHeads: 2, nKvHeads: 1, nLayers: 2 }, decoder: { nLayers: 4 } })
    expect(m.config.kind === 'encoder_decoder' && m.config.encoder.headDim).toBe(16)
    expect(m.tensors.get('decoder.layers.3.cross_k')!.shape).toEqual([20, 32]) // (kvDim, encoder dim)
    expect(() => syntheticTwoTower({ image: { imageSize: 10, patchSize: 4 } })).toThrow(/multiple of image.patchSize/)
  })
})

describe('component model files', () => {
  for (const [label, make] of Object.entries(MODELS)) {
    it(`${label}: save → load gives the same config and bytes (F32), and half-rounded values (F16)`, async () => {
      const model = make()
      const at = join(dir, label)
      await saveComponentModel(at, model)
      const loaded = await loadComponentModel(at)
      expect(loaded.config).toEqual(model.config)
      expect([...loaded.tensors.keys()].sort()).toEqual([...model.tensors.keys()].sort())
      for (const [name, t] of model.tensors) {
        const u = loaded.tensors.get(name)!
        expect([u.dtype, u.shape]).toEqual([t.dtype, t.shape])
        expect(Buffer.compare(u.data, t.data), name).toBe(0)
      }
      await saveComponentModel(at + '-f16', model, { dtype: 'F16' })
      const half = await loadComponentModel(at + '-f16')
      for (const [name, t] of model.tensors) {
        const u = half.tensors.get(name)!
        expect(u.dtype).toBe('F16')
        const want = toFloat32(t).map(x => f16ToF32(f32ToF16(x)))
        expect(toFloat32(u)).toEqual(want)
      }
      const json = JSON.parse(encodeComponentModel(model).config) as { model_type: string }
      expect(json.model_type).toBe(model.config.kind === 'two_tower' ? 'shardmesh_two_tower' : 'shardmesh_encoder_decoder')
    })
  }

  it('part sizes add up to the file\'s tensor bytes, per component and per layer', () => {
    for (const make of Object.values(MODELS)) {
      const model = make()
      const sizes = componentPartSizes(model.config)
      for (const component of componentNames(model.config)) {
        const shapes = componentTensorShapes(model.config, component)
        const bytesOf = (part: string | number): number => [...shapes].filter(([, s]) => s.part === part).reduce((sum, [name]) => sum + model.tensors.get(name)!.data.byteLength, 0)
        expect(sizes[component].embedding).toBe(bytesOf('embedding'))
        expect(sizes[component].head).toBe(bytesOf('head'))
        expect(sizes[component].layers).toEqual(sizes[component].layers.map((_, l) => bytesOf(l)))
        expect(sizes[component].units.length).toBe(2 * sizes[component].layers.length)
        sizes[component].layers.forEach((bytes, l) => expect(sizes[component].units[2 * l] + sizes[component].units[2 * l + 1]).toBe(bytes))
        expect(sizes[component].tiedHead).toBe(false)
      }
      const half = componentPartSizes(model.config, 'F16')
      expect(half[componentNames(model.config)[0]].embedding * 2).toBe(sizes[componentNames(model.config)[0]].embedding)
    }
    const ed = componentPartSizes(syntheticEncoderDecoder().config)
    // a decoder layer: 3 norms, wq/wo/cross_q/cross_o (40×40), wk/wv (20×40), cross_k/cross_v (20×48, over the memory), w1/w2/w3
    expect(ed.decoder.layers[0]).toBe(4 * (3 * 40 + 4 * 40 * 40 + 2 * 20 * 40 + 2 * 20 * 48 + 3 * 112 * 40))
    expect(ed.encoder.head).toBe(4 * 48)
    expect(ed.decoder.units.slice(0, 2)).toEqual([4 * (2 * 40 + 4 * 40 * 40 + 2 * 20 * 40 + 2 * 20 * 48), 4 * (40 + 3 * 112 * 40)])
  })

  it('the decoder as a Llama ModelConfig for the engine', () => {
    const { config } = syntheticEncoderDecoder()
    if (config.kind !== 'encoder_decoder') throw new Error('kind')
    expect(decoderModelConfig(config)).toMatchObject({ architecture: 'llama', dim: 40, nLayers: 3, vocabSize: 200, ropeLayout: 'half', tiedEmbeddings: false, bosId: 1, stopIds: [2] })
  })

  it('loading is strict: typed errors for missing or inconsistent configs and tensors', async () => {
    const tt = syntheticTwoTower()
    const ed = syntheticEncoderDecoder()
    await expect(loadComponentModel(join(dir, 'nothing-here'))).rejects.toMatchObject({ name: 'MissingFieldError' })
    await saveComponentModel(join(dir, 'broken'), tt)
    await writeFile(join(dir, 'broken', 'config.json'), '{ not json')
    await expect(loadComponentModel(join(dir, 'broken'))).rejects.toMatchObject({ name: 'CorruptCheckpointError' })
    const cases: Array<[string, () => ComponentModel, string, RegExp]> = [
      ['another model_type', edited(tt, { config: c => { c.model_type = 'llama' } }), 'UnsupportedArchitectureError', /model_type llama/],
      ['kind against model_type', edited(tt, { config: c => { c.kind = 'encoder_decoder' } }), 'CorruptCheckpointError', /contradicts/],
      ['a missing field', edited(tt, { config: c => { delete c.image.patchSize } }), 'MissingFieldError', /image has no patchSize/],
      ['a missing component', edited(ed, { config: c => { delete c.encoder } }), 'MissingFieldError', /no encoder/],
      ['a field of the wrong type', edited(tt, { config: c => { c.text.causal = 'yes' } }), 'CorruptCheckpointError', /text\.causal/],
      ['a non-integer dimension', edited(ed, { config: c => { c.decoder.dim = 40.5 } }), 'CorruptCheckpointError', /decoder\.dim/],
      ['an unknown field', edited(tt, { config: c => { c.text.nlayers = 3 } }), 'CorruptCheckpointError', /unknown field nlayers/],
      ['heads that do not share', edited(ed, { config: c => { c.encoder.nKvHeads = 4 } }), 'CorruptCheckpointError', /nKvHeads must divide/],
      ['an odd head size', edited(ed, { config: c => { c.encoder.headDim = 7 } }), 'CorruptCheckpointError', /odd/],
      ['patches that do not tile', edited(tt, { config: c => { c.image.patchSize = 5 } }), 'CorruptCheckpointError', /multiple/],
      ['more patches than positions', edited(tt, { config: c => { c.image.contextLength = 8 } }), 'CorruptCheckpointError', /16 patches/],
      ['a bidirectional decoder', edited(ed, { config: c => { c.decoder.causal = false } }), 'CorruptCheckpointError', /must be causal/],
      ['a stop id outside the vocabulary', edited(ed, { config: c => { c.decoder.stopIds = [200] } }), 'CorruptCheckpointError', /stopIds/],
      ['a missing tensor', edited(ed, { tensors: t => { t.delete('decoder.layers.1.cross_v') } }), 'MissingFieldError', /decoder\.layers\.1\.cross_v/],
      ['more layers than tensors', edited(ed, { config: c => { c.decoder.nLayers = 4 } }), 'MissingFieldError', /decoder\.layers\.3/],
      ['a tensor of another model', edited(tt, { tensors: t => { t.set('text.layers.0.cross_q', { ...t.get('text.layers.0.wq')!, name: 'text.layers.0.cross_q' }) } }), 'UnsupportedArchitectureError', /text\.layers\.0\.cross_q/],
      ['a wrong shape', edited(ed, { config: c => { c.encoder.dim = 40; c.encoder.headDim = 8; c.encoder.nHeads = 5; c.encoder.nKvHeads = 1 } }), 'CorruptCheckpointError', /encoder\.embed has shape \[200, 48\], the config needs \[200, 40\]/]
    ]
    for (const [what, load, name, message] of cases) {
      expect(errorName(load), what).toBe(name)
      expect(load, what).toThrow(message)
    }
  })
})
