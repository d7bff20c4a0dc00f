// Backend compliance, activation ops: each WebGPU kernel against its CPU twin
// (cpu/kernels.ts, sampling.ts) over seeded random shapes that are not multiples of the
// workgroup sizes, naming the first differing index. Tolerances (f32 on the GPU; the CPU
// twins compute in float64 and round once):
// - add: bit-identical (one correctly rounded f32 add on both sides);
// - rmsnorm: |Δ| <= 1e-6 · max|out| of the row;
// - rope: |Δ| <= 1e-6 · (1 + |out|) (same cos/sin table; products rounded in f32);
// - swiglu: |Δ| <= 1e-6 · (1 + |out|) (exp within a few ULP);
// - attention (decode and prefill, causal, GQA; and unmasked over `keys` keys, as encoders
//   and cross-attention run it): |Δ| <= 1e-5 · max|v| (an online softmax in f32 against a
//   two-pass one in float64);
// - mean over rows (an image tower's pooling): |Δ| <= 1e-6 · max|x| of the column (f32 sum in
//   row order against a float64 one);
// - softmax: |Δ| <= 1e-6 · max(p) of the row; CPU twin below (float64);
// - top-k and argmax: identical indices to the CPU sampler's order (larger value first,
//   lower index first on ties), ties made on purpose.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { addInPlace, attention, meanRows, rmsnorm, rope, RopeTable, swiglu } from '../src/cpu/kernels.ts'
import { argmax } from '../src/sampling.ts'
import { WebGpuOps } from '../src/webgpu/ops.ts'

process.env.VK_ICD_FILENAMES ??= '/usr/lib/chromium/vk_swiftshader_icd.json'

function rng (seed: number): { int: (lo: number, hi: number) => number, normal: (n: number, scale?: number) => Float32Array } {
  let s = seed >>> 0
  const next = (): number => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s / 2 ** 32 }
  return {
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    normal: (n, scale = 1) => {
      const out = new Float32Array(n)
      for (let i = 0; i < n; i++) out[i] = scale * Math.sqrt(-2 * Math.log(next() + 1e-12)) * Math.cos(2 * Math.PI * next())
      return out
    }
  }
}

function firstDifference (got: ArrayLike<number>, want: ArrayLike<number>, tol: (i: number) => number): string | undefined {
  if (got.length !== want.length) return `length ${got.length}, want ${want.length}`
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i] - want[i])
    if (!(err <= tol(i))) return `first difference at index ${i}: gpu ${got[i]}, cpu ${want[i]}, |Δ| ${err} > ${tol(i)}`
  }
  return undefined
}

const maxAbs = (x: Float32Array): number => x.reduce((m, v) => Math.max(m, Math.abs(v)), 0)

let ops: WebGpuOps
beforeAll(async () => { ops = await WebGpuOps.create() })
afterAll(() => { ops?.ctx.device.destroy() })

describe('webgpu kernels vs their cpu twins', () => {
  it('add is bit-identical', async () => {
    const r = rng(1)
    for (const len of [1, 63, 257, 1000]) {
      const x = r.normal(len)
      const y = r.normal(len)
      const got = await ops.add(x, y)
      addInPlace(x, y, len)
      expect(firstDifference(got, x, () => 0), `len ${len}`).toBeUndefined()
    }
  })

  it('swiglu', async () => {
    const r = rng(2)
    for (const len of [1, 65, 300, 1001]) {
      const gate = r.normal(len, 4)
      const up = r.normal(len)
      const got = await ops.swiglu(gate, up)
      swiglu(gate, up, len)
      expect(firstDifference(got, gate, i => 1e-6 * (1 + Math.abs(gate[i]))), `len ${len}`).toBeUndefined()
    }
  })

  it('rmsnorm, including the head reading only the last rows', async () => {
    const r = rng(3)
    for (let c = 0; c < 5; c++) {
      const dim = r.int(1, 300)
      const n = r.int(1, 9)
      const x = r.normal(n * dim, 3)
      const w = r.normal(dim)
      const want = new Float32Array(n * dim)
      rmsnorm(want, x, w, n, dim, 1e-5)
      const got = await ops.rmsnorm(x, w, n, dim, 1e-5)
      for (let t = 0; t < n; t++) {
        const row = want.subarray(t * dim, (t + 1) * dim)
        expect(firstDifference(got.subarray(t * dim, (t + 1) * dim), row, () => 1e-6 * maxAbs(row)), `dim ${dim}, row ${t} of ${n}`).toBeUndefined()
      }
    }
  })

  it.each(['interleaved', 'half'] as const)('rope (%s pairs) on queries and on cached keys', async layout => {
    const r = rng(layout.length)
    for (let c = 0; c < 4; c++) {
      const nKvHeads = r.int(1, 3)
      const nHeads = nKvHeads * r.int(1, 3)
      const headDim = 2 * r.int(1, 20)
      const n = r.int(1, 7)
      const start = c === 0 ? 0 : r.int(0, 300)
      const q = r.normal(n * nHeads * headDim)
      const k = r.normal((start + n) * nKvHeads * headDim)
      const got = await ops.rope(q, k, n, start, { nHeads, nKvHeads, headDim, layout }, 10000)
      const table = new RopeTable(headDim, 10000)
      table.ensure(start + n)
      rope(q, n, nHeads, headDim, start, table, layout)
      rope(k.subarray(start * nKvHeads * headDim), n, nKvHeads, headDim, start, table, layout)
      const what = `${nHeads}/${nKvHeads} heads of ${headDim}, positions ${start}..${start + n - 1}`
      expect(firstDifference(got.q, q, i => 1e-6 * (1 + Math.abs(q[i]))), 'q: ' + what).toBeUndefined()
      expect(firstDifference(got.k, k, i => 1e-6 * (1 + Math.abs(k[i]))), 'k: ' + what).toBeUndefined()
    }
  })

  it('attention over the KV cache: decode and prefill, causal, grouped-query heads', async () => {
    const r = rng(5)
    const cases = [{ n: 1, start: 0 }, { n: 1, start: 37 }, { n: 5, start: 0 }, { n: 3, start: 20 }, { n: 1, start: 130 }]
    for (const { n, start } of cases) {
      const nKvHeads = r.int(1, 3)
      const nHeads = nKvHeads * r.int(1, 4)
      const headDim = r.int(1, 40)
      const kvDim = nKvHeads * headDim
      const q = r.normal(n * nHeads * headDim)
      const k = r.normal((start + n) * kvDim)
      const v = r.normal((start + n) * kvDim)
      const shape = { nHeads, nKvHeads, headDim }
      const want = new Float32Array(n * nHeads * headDim)
      attention(want, q, k, v, n, start, shape, new Float32Array(shape.nHeads * (start + n)))
      const got = await ops.attention(q, k, v, n, start, shape)
      expect(firstDifference(got, want, () => 1e-5 * maxAbs(v)), `${nHeads}/${nKvHeads} heads of ${headDim}, n ${n} from ${start}`).toBeUndefined()
    }
  })

  it('attention without a mask: every query row over keys [0, keys), grouped-query heads', async () => {
    const r = rng(8)
    // encoder passes (keys = n) and cross-attention (keys = the memory's length, any n);
    // key counts below, at and above the attention workgroup size, not multiples of it
    const cases = [{ n: 1, keys: 1 }, { n: 5, keys: 5 }, { n: 16, keys: 16 }, { n: 1, keys: 13 }, { n: 3, keys: 70 }, { n: 37, keys: 37 }]
    for (const { n, keys } of cases) {
      const nKvHeads = r.int(1, 3)
      const nHeads = nKvHeads * r.int(1, 4)
      const headDim = r.int(1, 40)
      const kvDim = nKvHeads * headDim
      const q = r.normal(n * nHeads * headDim)
      const k = r.normal(keys * kvDim)
      const v = r.normal(keys * kvDim)
      const shape = { nHeads, nKvHeads, headDim }
      const want = new Float32Array(n * nHeads * headDim)
      attention(want, q, k, v, n, 0, shape, new Float32Array(shape.nHeads * keys), keys)
      const got = await ops.attention(q, k, v, n, 0, shape, keys)
      expect(firstDifference(got, want, () => 1e-5 * maxAbs(v)), `${nHeads}/${nKvHeads} heads of ${headDim}, n ${n} over ${keys} keys`).toBeUndefined()
    }
  })

  it('mean over rows', async () => {
    const r = rng(9)
    for (const [n, dim] of [[1, 1], [16, 40], [49, 300], [256, 67]]) {
      const x = r.normal(n * dim, 2)
      const want = new Float32Array(dim)
      meanRows(want, x, n, dim)
      const got = await ops.mean(x, n, dim)
      const colMax = Array.from({ length: dim }, (_, j) => { let m = 0; for (let t = 0; t < n; t++) m = Math.max(m, Math.abs(x[t * dim + j])); return m })
      expect(firstDifference(got, want, j => 1e-6 * colMax[j]), `${n} rows of ${dim}`).toBeUndefined()
    }
  })

  it('softmax at a temperature', async () => {
    const r = rng(6)
    for (const [n, len, temperature] of [[1, 1, 1], [2, 77, 0.7], [3, 513, 1.3]]) {
      const x = r.normal(n * len, 3)
      const got = await ops.softmax(x, n, len, temperature)
      for (let t = 0; t < n; t++) {
        const row = x.subarray(t * len, (t + 1) * len)
        const max = row.reduce((m, v) => Math.max(m, v), -Infinity)
        const e = Array.from(row, v => Math.exp((v - max) / temperature))
        const sum = e.reduce((s, v) => s + v, 0)
        const want = e.map(v => v / sum)
        const top = Math.max(...want)
        expect(firstDifference(got.subarray(t * len, (t + 1) * len), want, () => 1e-6 * top), `row ${t} of ${len} at T=${temperature}`).toBeUndefined()
      }
    }
  })

  it('top-k and argmax rank like the CPU sampler, ties to the lowest index', async () => {
    const r = rng(7)
    for (const [len, k] of [[1, 1], [10, 3], [500, 1], [513, 40], [2000, 7]]) {
      const logits = r.normal(len)
      // ties: copy the largest value (and a few others) to later and earlier indices
      const best = argmax(logits)
      logits[len - 1] = logits[best]
      if (len > 3) logits[Math.floor(len / 2)] = logits[1]
      const order = Array.from({ length: len }, (_, i) => i).sort((a, b) => logits[b] - logits[a] || a - b)
      const got = await ops.topk(logits, k)
      expect(Array.from(got.indices), `len ${len}, k ${k}`).toEqual(order.slice(0, k))
      expect(Array.from(got.values)).toEqual(order.slice(0, k).map(i => logits[i]))
      if (k === 1) expect(got.indices[0]).toBe(argmax(logits))
    }
  })
})
