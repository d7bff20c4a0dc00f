import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { layerManifest, partBytes, partsForStage, partTensors, PART_ALIGNMENT, readGguf, syntheticModel, SYNTHETIC_PRESETS } from '../src/index.ts'
import type { Checkpoint, Tensor } from '../src/index.ts'
import { storiesDir } from '../../../test/fixtures.ts'

const stories = readGguf(new Uint8Array(await readFile(join(storiesDir(), 'stories260K.gguf'))), 'stories260K.gguf')
const tied = syntheticModel(SYNTHETIC_PRESETS['tiny-gqa2'])

describe('layer manifest', () => {
  it('puts every tensor in exactly one part: embedding, each layer, head', () => {
    for (const ckpt of [stories, tied]) {
      const m = layerManifest(ckpt)
      expect(m.parts.map(p => p.id)).toEqual(['embedding', ...Array.from({ length: ckpt.config.nLayers }, (_, l) => `layer.${l}`), 'head'])
      const names = m.parts.flatMap(p => p.tensors.map(t => t.name)).sort()
      expect(names).toEqual([...ckpt.tensors.keys()].sort())
      for (const p of m.parts.filter(p => p.kind === 'layer')) {
        expect(p.tensors.every(t => t.name.startsWith(`layers.${p.layer}.`))).toBe(true)
        expect(p.tensors).toHaveLength(9)
      }
    }
  })

  it('records dtype, shape and byte size, with tensors aligned inside a part', () => {
    const m = layerManifest(stories)
    const layer0 = m.parts.find(p => p.id === 'layer.0')!
    const wq = layer0.tensors.find(t => t.name === 'layers.0.wq')!
    expect(wq).toMatchObject({ dtype: 'F32', shape: [64, 64], byteLength: 64 * 64 * 4 })
    for (const p of m.parts) {
      for (const t of p.tensors) expect(t.offset % PART_ALIGNMENT).toBe(0)
      const last = p.tensors[p.tensors.length - 1]
      expect(p.byteLength).toBe(last.offset + last.byteLength)
    }
  })

  it('says a tied head needs the embedding part', () => {
    expect(layerManifest(tied).parts.find(p => p.id === 'head')!.requires).toEqual(['embedding'])
    expect(layerManifest(stories).parts.find(p => p.id === 'head')!.requires).toEqual([]) // the GGUF stores output.weight
    const m = layerManifest(tied)
    expect(partsForStage(m, [0, 1]).map(p => p.id)).toEqual(['embedding', 'layer.0'])
    expect(partsForStage(m, [1, 2]).map(p => p.id)).toEqual(['layer.1'])
    expect(partsForStage(m, [2, 3]).map(p => p.id)).toEqual(['embedding', 'layer.2', 'head'])
  })

  it('round-trips every part through its bytes', () => {
    for (const ckpt of [stories, tied]) {
      const m = layerManifest(ckpt)
      const rebuilt = new Map<string, Tensor>()
      for (const p of m.parts) for (const t of partTensors(p, partBytes(ckpt, p))) rebuilt.set(t.name, t)
      for (const [name, t] of ckpt.tensors) {
        const r = rebuilt.get(name)!
        expect(r.dtype).toBe(t.dtype)
        expect(r.shape).toEqual(t.shape)
        expect(Buffer.from(r.data).equals(Buffer.from(t.data)), name).toBe(true)
      }
    }
  })

  it('rejects a part whose size does not match and a tensor outside any part', () => {
    const m = layerManifest(tied)
    const p = m.parts[1]
    expect(() => partTensors(p, new Uint8Array(p.byteLength - 1))).toThrow(expect.objectContaining({ name: 'CorruptCheckpointError' }))
    const extra: Checkpoint = { ...tied, tensors: new Map(tied.tensors) }
    extra.tensors.set('layers.9.wq', tied.tensors.get('layers.0.wq')!)
    expect(() => layerManifest(extra)).toThrow(expect.objectContaining({ name: 'CorruptCheckpointError', message: expect.stringContaining('layers.9.wq') }))
  })
})
