import type { RopeLayout } from '@shardmesh/model'

/** out[t] = w ⊙ x[t] / sqrt(mean(x[t]²) + eps) for each of n rows of length dim. */
export function rmsnorm (out: Float32Array, x: Float32Array, w: Float32Array, n: number, dim: number, eps: number): void {
  for (let t = 0; t < n; t++) {
    const o = t * dim
    let ss = 0
    for (let j = 0; j < dim; j++) ss += x[o + j] * x[o + j]
    const scale = 1 / Math.sqrt(ss / dim + eps)
    for (let j = 0; j < dim; j++) out[o + j] = w[j] * (scale * x[o + j])
  }
}

/** x += y elementwise. */
export function addInPlace (x: Float32Array, y: Float32Array, len: number): void {
  for (let i = 0; i < len; i++) x[i] += y[i]
}

/** gate = silu(gate) * up, elementwise over len values. */
export function swiglu (gate: Float32Array, up: Float32Array, len: number): void {
  for (let i = 0; i < len; i++) {
    const g = gate[i]
    gate[i] = (g / (1 + Math.exp(-g))) * up[i]
  }
}

/** Cosine and sine tables `(positions, headDim/2)` for RoPE, grown on demand. */
export class RopeTable {
  private readonly half: number
  private readonly invFreq: Float64Array
  cos = new Float32Array(0)
  sin = new Float32Array(0)
  private positions = 0

  constructor (headDim: number, theta: number) {
    this.half = headDim / 2
    this.invFreq = new Float64Array(this.half)
    for (let i = 0; i < this.half; i++) this.invFreq[i] = 1 / theta ** ((2 * i) / headDim)
  }

  ensure (positions: number): void {
    if (positions <= this.positions) return
    const capacity = Math.max(positions, this.positions * 2, 64)
    const cos = new Float32Array(capacity * this.half)
    const sin = new Float32Array(capacity * this.half)
    cos.set(this.cos)
    sin.set(this.sin)
    for (let p = this.positions; p < capacity; p++) {
      for (let i = 0; i < this.half; i++) {
        const angle = p * this.invFreq[i]
        cos[p * this.half + i] = Math.cos(angle)
        sin[p * this.half + i] = Math.sin(angle)
      }
    }
    this.cos = cos
    this.sin = sin
    this.positions = capacity
  }
}

/**
 * Rotate x `(n, heads, headDim)` in place for positions start..start+n-1.
 * `interleaved` pairs (2i, 2i+1); `half` pairs (i, i + headDim/2).
 */
export function rope (x: Float32Array, n: number, heads: number, headDim: number, start: number, table: RopeTable, layout: RopeLayout): void {
  const half = headDim / 2
  const stride = layout === 'interleaved' ? 2 : 1
  const partner = layout === 'interleaved' ? 1 : half
  for (let t = 0; t < n; t++) {
    const tab = (start + t) * half
    for (let h = 0; h < heads; h++) {
      const o = (t * heads + h) * headDim
      for (let i = 0; i < half; i++) {
        const a = o + i * stride
        const b = a + partner
        const c = table.cos[tab + i]
        const s = table.sin[tab + i]
        const x0 = x[a]
        const x1 = x[b]
        x[a] = x0 * c - x1 * s
        x[b] = x0 * s + x1 * c
      }
    }
  }
}

export interface AttentionShape {
  nHeads: number
  nKvHeads: number
  headDim: number
}

/**
 * Causal attention for n query positions start..start+n-1 over keys 0..start+t.
 * q `(n, nHeads, headDim)`; kCache, vCache `(positions, nKvHeads, headDim)`;
 * out `(n, nHeads, headDim)`; scores is scratch of at least start+n floats.
 */
export function attention (out: Float32Array, q: Float32Array, kCache: Float32Array, vCache: Float32Array, n: number, start: number, shape: AttentionShape, scores: Float32Array): void {
  const { nHeads, nKvHeads, headDim } = shape
  const kvDim = nKvHeads * headDim
  const group = nHeads / nKvHeads
  const scale = 1 / Math.sqrt(headDim)
  const acc = new Float64Array(headDim)
  for (let t = 0; t < n; t++) {
    const last = start + t
    for (let h = 0; h < nHeads; h++) {
      const qo = (t * nHeads + h) * headDim
      const kvo = Math.floor(h / group) * headDim
      let max = -Infinity
      for (let p = 0; p <= last; p++) {
        const ko = p * kvDim + kvo
        let s = 0
        for (let i = 0; i < headDim; i++) s += q[qo + i] * kCache[ko + i]
        s *= scale
        scores[p] = s
        if (s > max) max = s
      }
      let sum = 0
      for (let p = 0; p <= last; p++) {
        const e = Math.exp(scores[p] - max)
        scores[p] = e
        sum += e
      }
      acc.fill(0)
      for (let p = 0; p <= last; p++) {
        const a = scores[p] / sum
        const vo = p * kvDim + kvo
        for (let i = 0; i < headDim; i++) acc[i] += a * vCache[vo + i]
      }
      for (let i = 0; i < headDim; i++) out[qo + i] = acc[i]
    }
  }
}
