import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { readGguf } from '../src/gguf/read.ts'
import { writeGguf } from '../src/gguf/write.ts'
import { readSafetensorsModel } from '../src/safetensors/read.ts'
import { interleavedToHalfRows } from '../src/rope-permute.ts'
import { writeSafetensorsModel } from '../src/safetensors/write.ts'
import { SYNTHETIC_PRESETS, syntheticModel } from '../src/synthetic.ts'
import type { SyntheticModelInit } from '../src/synthetic.ts'
import { createTokenizer } from '../src/tokenizer/index.ts'
import type { Checkpoint, Tensor } from '../src/types.ts'

const TINY = ['tiny-gqa2', 'tiny-gqa4-untied', 'tiny-mha-odd'] as const

const floats = (t: Tensor): Float32Array => new Float32Array(t.data.buffer, t.data.byteOffset, t.data.byteLength / 4)
const sameBytes = (a: Tensor, b: Tensor): boolean => Buffer.compare(a.data, b.data) === 0

/** Greedy decoding with a plain f32 Llama forward pass (RoPE `half`); returns the tokens and top-1/top-2 margins. */
function greedy (ckpt: Checkpoint, prompt: number[], steps: number): { tokens: number[], margins: number[] } {
  const { dim, hiddenDim, nLayers, nHeads, nKvHeads, headDim, vocabSize, normEps, ropeTheta } = ckpt.config
  const w = (name: string): Float32Array => floats(ckpt.tensors.get(name)!)
  const matvec = (m: Float32Array, x: Float32Array, rows: number): Float32Array =>
    Float32Array.from({ length: rows }, (_, r) => x.reduce((s, v, c) => s + m[r * x.length + c] * v, 0))
  const rmsnorm = (x: Float32Array, g: Float32Array): Float32Array => {
    const scale = 1 / Math.sqrt(x.reduce((a, v) => a + v * v, 0) / x.length + normEps)
    return x.map((v, i) => v * g[i] * scale)
  }
  const rope = (x: Float32Array, pos: number): void => { // (heads, headDim), pairs (i, i + headDim/2)
    for (let base = 0; base < x.length; base += headDim) {
      for (let i = 0; i < headDim / 2; i++) {
        const angle = pos * ropeTheta ** (-2 * i / headDim)
        const [a, b] = [x[base + i], x[base + i + headDim / 2]]
        x[base + i] = a * Math.cos(angle) - b * Math.sin(angle)
        x[base + i + headDim / 2] = a * Math.sin(angle) + b * Math.cos(angle)
      }
    }
  }
  const keys: Float32Array[][] = Array.from({ length: nLayers }, () => []) // (layer, pos, nKvHeads*headDim)
  const values: Float32Array[][] = Array.from({ length: nLayers }, () => [])
  const emb = w('tok_embeddings')
  const head = ckpt.config.tiedEmbeddings ? emb : w('output')
  const tokens = [...prompt]
  const margins: number[] = []
  for (let pos = 0; pos < prompt.length + steps - 1; pos++) {
    let x = emb.slice(tokens[pos] * dim, (tokens[pos] + 1) * dim) // (dim)
    for (let l = 0; l < nLayers; l++) {
      const p = `layers.${l}.`
      const xn = rmsnorm(x, w(p + 'attention_norm'))
      const q = matvec(w(p + 'wq'), xn, nHeads * headDim) // (nHeads, headDim)
      const k = matvec(w(p + 'wk'), xn, nKvHeads * headDim) // (nKvHeads, headDim)
      rope(q, pos)
      rope(k, pos)
      keys[l].push(k)
      values[l].push(matvec(w(p + 'wv'), xn, nKvHeads * headDim))
      const att = new Float32Array(nHeads * headDim) // (nHeads, headDim)
      for (let h = 0; h < nHeads; h++) {
        const kv = Math.floor(h / (nHeads / nKvHeads)) * headDim
        const scores = keys[l].map((kt) => q.subarray(h * headDim, (h + 1) * headDim).reduce((s, v, i) => s + v * kt[kv + i], 0) / Math.sqrt(headDim))
        const e = scores.map((s) => Math.exp(s - Math.max(...scores)))
        const sum = e.reduce((a, b) => a + b, 0)
        for (let t = 0; t <= pos; t++) {
          for (let i = 0; i < headDim; i++) att[h * headDim + i] += e[t] / sum * values[l][t][kv + i]
        }
      }
      const o = matvec(w(p + 'wo'), att, dim)
      x = x.map((v, i) => v + o[i])
      const hn = rmsnorm(x, w(p + 'ffn_norm'))
      const up = matvec(w(p + 'w3'), hn, hiddenDim)
      const act = matvec(w(p + 'w1'), hn, hiddenDim).map((g, i) => g / (1 + Math.exp(-g)) * up[i]) // (hidden)
      const down = matvec(w(p + 'w2'), act, dim)
      x = x.map((v, i) => v + down[i])
    }
    if (pos < prompt.length - 1) continue
    const logits = matvec(head, rmsnorm(x, w('norm')), vocabSize) // (vocab)
    const [first, second] = [...logits.keys()].sort((a, b) => logits[b] - logits[a])
    margins.push(logits[first] - logits[second])
    tokens.push(first)
  }
  return { tokens, margins }
}

describe('syntheticModel', () => {
  it('is a pure function of its init and seed', () => {
    const a = syntheticModel({ seed: 7 })
    const b = syntheticModel({ seed: 7 })
    const c = syntheticModel({ seed: 8 })
    expect(b.config).toEqual(a.config)
    expect(b.tokenizer).toEqual(a.tokenizer)
    for (const [name, t] of a.tensors) {
      expect(sameBytes(b.tensors.get(name)!, t), name).toBe(true)
      expect(sameBytes(c.tensors.get(name)!, t), name).toBe(false)
    }
  })

  it('builds every preset with the shapes its config implies', () => {
    for (const [preset, init] of Object.entries(SYNTHETIC_PRESETS) as Array<[string, SyntheticModelInit]>) {
      const { config, tensors } = syntheticModel(init)
      const { dim, hiddenDim, nHeads, nKvHeads, headDim, vocabSize } = config
      const { tied = true, ...fields } = init
      expect(config).toMatchObject({ ...fields, tiedEmbeddings: tied, ropeLayout: 'half' })
      expect(headDim * nHeads, preset).toBe(dim)
      expect(headDim % 2, preset).toBe(0)
      expect(tensors.size, preset).toBe(2 + 9 * config.nLayers + (config.tiedEmbeddings ? 0 : 1))
      expect(tensors.get('tok_embeddings')!.shape).toEqual([vocabSize, dim])
      expect(tensors.get('layers.0.wq')!.shape).toEqual([nHeads * headDim, dim])
      expect(tensors.get('layers.0.wk')!.shape).toEqual([nKvHeads * headDim, dim])
      expect(tensors.get('layers.0.wo')!.shape).toEqual([dim, nHeads * headDim])
      expect(tensors.get('layers.0.w2')!.shape).toEqual([dim, hiddenDim])
      expect(tensors.get(`layers.${config.nLayers - 1}.w3`)!.shape).toEqual([hiddenDim, dim])
      expect([...tensors.values()].every((t) => t.dtype === 'F32' && t.data.byteLength === 4 * t.shape.reduce((a, b) => a * b, 1))).toBe(true)
      if (preset === 'synthetic-100m') {
        expect([...tensors.values()].reduce((n, t) => n + t.data.byteLength / 4, 0)).toBe(109_529_856)
      }
    }
  }, 60_000) // synthetic-100m alone fills 438 MB; its build time: pnpm bench:model

  it('refuses odd head sizes, ungrouped KV heads and vocabularies without the base pieces', () => {
    expect(() => syntheticModel({ dim: 40, nHeads: 8 })).toThrow(RangeError)
    expect(() => syntheticModel({ nHeads: 4, nKvHeads: 3 })).toThrow(RangeError)
    expect(() => syntheticModel({ vocabSize: 300 })).toThrow(RangeError)
  })

  it('scales weights by fan-in, keeps norms near ±1 and alternates the sign of a tied final norm', () => {
    const { tensors } = syntheticModel({ dim: 64, hiddenDim: 176 })
    const std = (t: Tensor): number => Math.sqrt(floats(t).reduce((a, v) => a + v * v, 0) / floats(t).length)
    expect(std(tensors.get('layers.0.wq')!)).toBeCloseTo(1 / 8, 2)
    expect(std(tensors.get('layers.1.w2')!) * Math.sqrt(176)).toBeCloseTo(1, 1)
    expect(floats(tensors.get('layers.0.ffn_norm')!).every((v) => Math.abs(v - 1) < 0.3)).toBe(true)
    const norm = floats(tensors.get('norm')!)
    expect(norm.every((v, i) => Math.abs(v - (i % 2 === 0 ? -1 : 1)) < 0.3)).toBe(true)
    const untied = syntheticModel({ tied: false })
    expect(floats(untied.tensors.get('norm')!).every((v) => Math.abs(v - 1) < 0.3)).toBe(true)
  })

  it('decodes greedily into varied tokens with clear top-1 margins', () => {
    for (const preset of TINY) {
      const ckpt = syntheticModel(SYNTHETIC_PRESETS[preset])
      const { tokens, margins } = greedy(ckpt, [1, 300, 301, 302], 24)
      const generated = tokens.slice(4)
      expect(new Set(generated).size, `${preset}: ${generated.join(' ')}`).toBeGreaterThanOrEqual(8)
      expect(margins.filter((m) => m < 1e-3).length, preset).toBeLessThanOrEqual(1)
      expect([...margins].sort((a, b) => a - b)[12], preset).toBeGreaterThan(0.05)
    }
  })
})

describe('syntheticTokenizer', () => {
  it('lays out control, byte, character and merged pieces', () => {
    const spec = syntheticModel({ vocabSize: 1200 }).tokenizer!
    const text = spec.pieces.map((p) => new TextDecoder().decode(p))
    expect(text.slice(0, 4)).toEqual(['<unk>', '<s>', '</s>', '<0x00>'])
    expect(text[258]).toBe('<0xFF>')
    expect(text.slice(259, 354).join('')).toBe(Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)).join(''))
    expect(text).toHaveLength(1200)
    expect(new Set(text).size).toBe(1200)
    for (const piece of text.slice(354)) expect(text, piece).toContain(piece.slice(0, -1)) // one merge from a shorter piece
    expect([...spec.types!.slice(0, 4)]).toEqual([2, 3, 3, 6])
    expect(spec.scores[400]).toBeGreaterThan(spec.scores[401])
    expect(spec).toMatchObject({ bosId: 1, eosId: 2, unkId: 0, addDummyPrefix: true })
  })

  it('encodes text with merges and byte fallback and decodes it back', () => {
    const tokenizer = createTokenizer(syntheticModel(SYNTHETIC_PRESETS['tiny-gqa4-untied']).tokenizer!)
    const text = 'the cat sat on the mat — Ünïcode!'
    const ids = tokenizer.encode(text)
    expect(ids[0]).toBe(1)
    expect(ids.length).toBeLessThan(text.length)
    expect(ids.some((id) => id >= 3 && id < 259)).toBe(true) // non-ASCII falls back to bytes
    expect(tokenizer.decode(ids.slice(1), { mode: 'bytes' }).trim()).toBe(text)
  })
})

describe('synthetic models through the checkpoint formats', () => {
  it.each(TINY)('%s survives GGUF and safetensors round trips', async (preset) => {
    const ckpt = syntheticModel(SYNTHETIC_PRESETS[preset])
    const { nHeads, nKvHeads } = ckpt.config

    const gguf = readGguf(writeGguf(ckpt), 'synthetic.gguf')
    expect(gguf.config).toEqual({ ...ckpt.config, ropeLayout: 'interleaved' })
    expect(gguf.tokenizer!.pieces).toEqual(ckpt.tokenizer!.pieces)
    for (const [name, t] of ckpt.tensors) {
      const back = gguf.tensors.get(name)!
      expect({ dtype: back.dtype, shape: back.shape }, name).toEqual({ dtype: 'F32', shape: t.shape })
      const rows = /\.wq$/.test(name) ? interleavedToHalfRows(back, nHeads) : /\.wk$/.test(name) ? interleavedToHalfRows(back, nKvHeads) : back
      if (rows !== back) expect(sameBytes(back, t), `${name} is permuted`).toBe(false)
      expect(sameBytes(rows, t), name).toBe(true)
    }

    const dir = await mkdtemp(join(tmpdir(), 'shardmesh-synthetic-'))
    try {
      await writeSafetensorsModel(gguf, dir) // interleaved in, Hugging Face order out
      const hf = await readSafetensorsModel(dir)
      expect(hf.config).toEqual(ckpt.config)
      for (const [name, t] of ckpt.tensors) expect(sameBytes(hf.tensors.get(name)!, t), name).toBe(true)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
