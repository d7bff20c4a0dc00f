import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { parseGguf } from '../src/gguf/parse.ts'
import { readGguf } from '../src/gguf/read.ts'
import { llamaShapes } from '../src/gguf/shapes.ts'
import { writeGguf } from '../src/gguf/write.ts'
import { readLlama2c } from '../src/llama2c.ts'
import { toFloat32 } from '../src/quant.ts'
import type { Checkpoint, ModelConfig, Tensor } from '../src/types.ts'
import { storiesDir } from '../../../test/fixtures.ts'

const dir = storiesDir()
const bin = readLlama2c(new Uint8Array(readFileSync(join(dir, 'stories260K.bin'))), 'stories260K.bin')
const real = readGguf(new Uint8Array(readFileSync(join(dir, 'stories260K.gguf'))), 'stories260K.gguf')

const same = (a: Uint8Array, b: Uint8Array): boolean => Buffer.compare(a, b) === 0

/** Random F32 Llama weights in [-1, 1) with every row a whole number of 32-blocks. */
function tiny (overrides: Partial<ModelConfig> = {}): Checkpoint {
  const config: ModelConfig = {
    architecture: 'llama', name: 'tiny', dim: 64, hiddenDim: 96, nLayers: 2, nHeads: 4, nKvHeads: 2, headDim: 16,
    vocabSize: 10, contextLength: 32, ropeTheta: 500000, ropeLayout: 'interleaved', normEps: 1e-6,
    tiedEmbeddings: false, bosId: 1, eosId: 2, stopIds: [2, 1], ...overrides
  }
  let s = 12345
  const tensors = new Map<string, Tensor>()
  for (const [name, shape] of llamaShapes(config)) {
    const values = new Float32Array(shape.reduce((a, b) => a * b, 1)).map(() => {
      s = (s * 1103515245 + 12345) >>> 0
      return s / 2 ** 31 - 1
    })
    tensors.set(name, { name, dtype: 'F32', shape, data: new Uint8Array(values.buffer) })
  }
  return { format: 'safetensors', source: 'tiny.safetensors', config, tensors }
}

describe('writeGguf', () => {
  it('round-trips the .bin checkpoint: same config, byte-identical tensors, still tied', () => {
    const back = readGguf(writeGguf(bin), 'copy.gguf')
    expect(back.config).toEqual(bin.config)
    expect([...back.tensors.keys()].sort()).toEqual([...bin.tensors.keys()].sort())
    for (const [name, t] of bin.tensors) expect(same(back.tensors.get(name)!.data, t.data), name).toBe(true)
    expect(back.tokenizer).toBeUndefined()
  })

  it('round-trips the real GGUF with its tokenizer, spelling spaces as ▁ in the file', () => {
    const bytes = writeGguf(real)
    const back = readGguf(bytes, 'copy.gguf')
    expect(back.config).toEqual(real.config)
    expect(back.tokenizer).toEqual(real.tokenizer)
    for (const [name, t] of real.tensors) expect(same(back.tensors.get(name)!.data, t.data), name).toBe(true)
    const file = parseGguf(bytes, 'copy.gguf')
    expect(file.version).toBe(3)
    expect((file.metadata.get('tokenizer.ggml.tokens') as string[])[410]).toBe('▁')
    expect((file.metadata.get('tokenizer.ggml.tokens') as string[])[259]).toBe('▁t')
    for (const t of file.tensors) expect((t.data.byteOffset - file.dataOffset) % 32, t.name).toBe(0)
  })

  it('keeps a non-default config (rope theta, eps, GQA, untied) through a write', () => {
    const ckpt = tiny()
    expect(readGguf(writeGguf(ckpt), 'x').config).toEqual(ckpt.config)
  })

  it('converts matrices to F16 / Q8_0 / Q4_0 within their error bounds, norms stay F32', () => {
    const ckpt = tiny()
    const bounds = { F32: 0, F16: 2 ** -11, Q8_0: 1 / 127 * 0.57, Q4_0: 1 / 8 * 1.01 } as const
    for (const matrixType of ['F32', 'F16', 'Q8_0', 'Q4_0'] as const) {
      const back = readGguf(writeGguf(ckpt, { matrixType }), 'x')
      for (const [name, t] of back.tensors) {
        expect(t.dtype, name).toBe(t.shape.length === 1 ? 'F32' : matrixType)
        const got = toFloat32(t)
        const want = toFloat32(ckpt.tensors.get(name)!)
        let worst = 0
        for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]))
        expect(worst, `${matrixType} ${name}`).toBeLessThanOrEqual(bounds[matrixType]) // values in [-1, 1)
      }
    }
  })

  it('leaves matrices whose rows are not whole blocks in their own dtype', () => {
    const back = readGguf(writeGguf(bin, { matrixType: 'Q8_0' }), 'x')
    expect(back.tensors.get('layers.0.w1')!.dtype).toBe('Q8_0')
    expect(back.tensors.get('layers.0.w2')!.dtype).toBe('F32') // 172 columns
    expect(same(back.tensors.get('layers.0.w2')!.data, bin.tensors.get('layers.0.w2')!.data)).toBe(true)
  })

  it('interleaves Hugging Face (half) Q/K rows per head, so attention scores are unchanged', () => {
    const ckpt = tiny({ ropeLayout: 'half' })
    const back = readGguf(writeGguf(ckpt, { matrixType: 'F16' }), 'x')
    expect(back.config.ropeLayout).toBe('interleaved')
    // the same F16 weights without the permutation
    const plain = readGguf(writeGguf({ ...ckpt, config: { ...ckpt.config, ropeLayout: 'interleaved' } }, { matrixType: 'F16' }), 'x')
    const { dim, headDim, nHeads, nKvHeads } = ckpt.config
    const x = new Float32Array(dim).map((_, i) => Math.sin(i))
    // (rows) = W (rows, dim) · x (dim)
    const project = (t: Tensor): Float32Array => {
      const w = toFloat32(t)
      return new Float32Array(t.shape[0]).map((_, r) => x.reduce((acc, xv, c) => acc + w[r * dim + c] * xv, 0))
    }
    // RoPE at position 3, pairing (i, i + headDim/2) or (2i, 2i + 1) within each head
    const rope = (v: Float32Array, layout: 'half' | 'interleaved', pos = 3): Float32Array => {
      const out = v.slice()
      for (let h = 0; h < v.length / headDim; h++) {
        for (let i = 0; i < headDim / 2; i++) {
          const a = h * headDim + (layout === 'half' ? i : 2 * i)
          const b = layout === 'half' ? a + headDim / 2 : a + 1
          const angle = pos * 500000 ** (-2 * i / headDim)
          out[a] = v[a] * Math.cos(angle) - v[b] * Math.sin(angle)
          out[b] = v[a] * Math.sin(angle) + v[b] * Math.cos(angle)
        }
      }
      return out
    }
    // one q·k score per query head (GQA: query head h reads kv head h / (nHeads / nKvHeads))
    const scores = (q: Float32Array, k: Float32Array): number[] => Array.from({ length: nHeads }, (_, h) => {
      const kv = Math.floor(h / (nHeads / nKvHeads))
      let dot = 0
      for (let d = 0; d < headDim; d++) dot += q[h * headDim + d] * k[kv * headDim + d]
      return dot
    })
    for (let l = 0; l < ckpt.config.nLayers; l++) {
      const [wq, wk] = [`layers.${l}.wq`, `layers.${l}.wk`]
      const hf = scores(rope(project(plain.tensors.get(wq)!), 'half'), rope(project(plain.tensors.get(wk)!), 'half'))
      const gguf = scores(rope(project(back.tensors.get(wq)!), 'interleaved'), rope(project(back.tensors.get(wk)!), 'interleaved'))
      gguf.forEach((s, h) => expect(s, `layer ${l} head ${h}`).toBeCloseTo(hf[h], 9))
      // the permutation itself, in kv head 1: new row 2i = old row i, new row 2i + 1 = old row i + headDim/2
      const row = (t: Tensor, r: number): Uint8Array => t.data.subarray((headDim + r) * dim * 2, (headDim + r + 1) * dim * 2)
      expect(same(row(back.tensors.get(wk)!, 2), row(plain.tensors.get(wk)!, 1))).toBe(true)
      expect(same(row(back.tensors.get(wk)!, 3), row(plain.tensors.get(wk)!, 1 + headDim / 2))).toBe(true)
    }
  })

  it('refuses checkpoints whose tensors contradict the config', () => {
    const ckpt = tiny()
    ckpt.tensors.delete('layers.1.w2')
    expect(() => writeGguf(ckpt)).toThrow(expect.objectContaining({ name: 'MissingFieldError', message: 'tiny.safetensors: missing tensor layers.1.w2' }))
    const tied = tiny({ tiedEmbeddings: true })
    tied.tensors.set('output', tiny().tensors.get('output')!)
    expect(() => writeGguf(tied)).toThrow(/unexpected tensor output \(config says the embeddings are tied\)/)
  })
})
