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

/** out `(dim)` = the mean of x's n rows `(n, dim)`, summed in float64 in row order and rounded once. */
export function meanRows (out: Float32Array, x: Float32Array, n: number, dim: number): void {
  const sum = new Float64Array(dim)
  for (let t = 0; t < n; t++) for (let j = 0; j < dim; j++) sum[j] += x[t * dim + j]
  for (let j = 0; j < dim; j++) out[j] = sum[j] / n
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
 * Causal attention for n query positions start..start+n-1 over keys 0..start+t; with `keys`,
 * every query row attends to all keys 0..keys-1 instead (bidirectional encoder attention and
 * cross-attention; `start` is then unused).
 * q `(n, nHeads, headDim)`; kCache, vCache `(positions, nKvHeads, headDim)`;
 * out `(n, nHeads, headDim)`; scores is scratch of at least nHeads·(keys ?? start+n) floats.
 * Positions are the outer loop, four at a time, and all heads are done at each, so the
 * K and V caches are read front to back once per query row. Every sum runs in float64 in
 * a fixed order (a score over i; a head's softmax total and output over positions), the
 * same whatever n or the loop blocking.
 */
export function attention (out: Float32Array, q: Float32Array, kCache: Float32Array, vCache: Float32Array, n: number, start: number, shape: AttentionShape, scores: Float32Array, keys?: number): void {
  const { nHeads, nKvHeads, headDim } = shape
  const kvDim = nKvHeads * headDim
  const qDim = nHeads * headDim
  const group = nHeads / nKvHeads
  const scale = 1 / Math.sqrt(headDim)
  const span = keys ?? start + n // one row of scores per head
  const qh = new Float64Array(qDim)
  const acc = new Float64Array(qDim)
  const max = new Float64Array(nHeads)
  const sum = new Float64Array(nHeads)
  for (let t = 0; t < n; t++) {
    const last = keys === undefined ? start + t : keys - 1
    for (let i = 0; i < qDim; i++) qh[i] = q[t * qDim + i]
    max.fill(-Infinity)
    let p = 0
    for (; p + 3 <= last; p += 4) {
      for (let h = 0; h < nHeads; h++) {
        const qo = h * headDim
        const k0 = p * kvDim + Math.floor(h / group) * headDim; const k1 = k0 + kvDim; const k2 = k1 + kvDim; const k3 = k2 + kvDim
        let s0 = 0; let s1 = 0; let s2 = 0; let s3 = 0
        for (let i = 0; i < headDim; i++) {
          const x = qh[qo + i]
          s0 += x * kCache[k0 + i]
          s1 += x * kCache[k1 + i]
          s2 += x * kCache[k2 + i]
          s3 += x * kCache[k3 + i]
        }
        s0 *= scale; s1 *= scale; s2 *= scale; s3 *= scale
        const so = h * span + p
        scores[so] = s0; scores[so + 1] = s1; scores[so + 2] = s2; scores[so + 3] = s3
        let m = max[h]
        if (s0 > m) m = s0
        if (s1 > m) m = s1
        if (s2 > m) m = s2
        if (s3 > m) m = s3
        max[h] = m
      }
    }
    for (; p <= last; p++) {
      for (let h = 0; h < nHeads; h++) {
        const qo = h * headDim
        const ko = p * kvDim + Math.floor(h / group) * headDim
        let s = 0
        for (let i = 0; i < headDim; i++) s += qh[qo + i] * kCache[ko + i]
        s *= scale
        scores[h * span + p] = s
        if (s > max[h]) max[h] = s
      }
    }
    for (let h = 0; h < nHeads; h++) {
      const so = h * span
      const m = max[h]
      let total = 0
      for (let p = 0; p <= last; p++) {
        const e = Math.exp(scores[so + p] - m)
        scores[so + p] = e
        total += e
      }
      sum[h] = total
    }
    acc.fill(0)
    p = 0
    for (; p + 3 <= last; p += 4) {
      for (let h = 0; h < nHeads; h++) {
        const so = h * span + p
        const total = sum[h]
        const a0 = scores[so] / total; const a1 = scores[so + 1] / total; const a2 = scores[so + 2] / total; const a3 = scores[so + 3] / total
        const v0 = p * kvDim + Math.floor(h / group) * headDim; const v1 = v0 + kvDim; const v2 = v1 + kvDim; const v3 = v2 + kvDim
        const ao = h * headDim
        for (let i = 0; i < headDim; i++) acc[ao + i] = (((acc[ao + i] + a0 * vCache[v0 + i]) + a1 * vCache[v1 + i]) + a2 * vCache[v2 + i]) + a3 * vCache[v3 + i]
      }
    }
    for (; p <= last; p++) {
      for (let h = 0; h < nHeads; h++) {
        const a = scores[h * span + p] / sum[h]
        const vo = p * kvDim + Math.floor(h / group) * headDim
        const ao = h * headDim
        for (let i = 0; i < headDim; i++) acc[ao + i] += a * vCache[vo + i]
      }
    }
    for (let i = 0; i < qDim; i++) out[t * qDim + i] = acc[i]
  }
}
