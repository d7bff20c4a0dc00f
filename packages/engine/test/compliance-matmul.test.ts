// Backend compliance, weight ops: matmul and embedding lookup on the WebGPU backend
// against their CPU twins (cpu/matmul.ts, cpu/matrix.ts readRow), over seeded random shapes
// that are not multiples of the tile, unit, lane or workgroup sizes, for every stored dtype
// and several tunings (subgroup and tree reductions, odd row and position tiles).
// Tolerances:
// - matmul: |gpu - cpu| <= 2e-6 · Σ_j |W[r, j] · x[t, j]| — both dequantize exactly and sum
//   the same f32 products in a different order;
// - embedding: bit-identical (one exact dequantization per element on both sides);
// - a matrix split into row chunks (past the storage binding limit) gives the same bits as
//   the same matrix in one buffer.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { toFloat32 } from '@shardmesh/model'
import type { DType, Tensor } from '@shardmesh/model'
import { cpuMatrix, readRow } from '../src/cpu/matrix.ts'
import { matmul } from '../src/cpu/matmul.ts'
import { WebGpuOps } from '../src/webgpu/ops.ts'
import type { Tuning } from '../src/webgpu/tuning.ts'
import { rng, tensorOf } from './weights-fixture.ts'

process.env.VK_ICD_FILENAMES ??= '/usr/lib/chromium/vk_swiftshader_icd.json'


/** First index where |got - want| > tol(i), described; undefined when all agree. */
function firstDifference (got: Float32Array, want: Float32Array, tol: (i: number) => number): string | undefined {
  if (got.length !== want.length) return `length ${got.length}, want ${want.length}`
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i] - want[i])
    if (!(err <= tol(i))) return `first difference at index ${i}: gpu ${got[i]}, cpu ${want[i]}, |Δ| ${err} > ${tol(i)}`
  }
  return undefined
}

/** Σ_j |W[r, j] · x[t, j]| for each output (t, r): the scale of a dot product's rounding error. */
function magnitudes (t: Tensor, x: Float32Array, n: number): Float64Array {
  const [rows, cols] = t.shape
  const w = toFloat32(t)
  const out = new Float64Array(n * rows)
  for (let p = 0; p < n; p++) {
    for (let r = 0; r < rows; r++) {
      let s = 0
      for (let j = 0; j < cols; j++) s += Math.abs(w[r * cols + j] * x[p * cols + j])
      out[p * rows + r] = s
    }
  }
  return out
}

const DTYPES: DType[] = ['F32', 'F16', 'BF16', 'Q8_0', 'Q4_0']
const TUNINGS: Array<[string, Partial<Tuning>]> = [
  ['adapter default', {}],
  ['tree, 16 lanes, 3 rows, tile 5', { subgroups: false, matmulLanes: 16, matmulRows: 3, matmulTile: 5 }],
  ['tree, 64 lanes, 1 row, tile 8', { subgroups: false, matmulLanes: 64, matmulRows: 1, matmulTile: 8 }]
]

let base: WebGpuOps
beforeAll(async () => { base = await WebGpuOps.create() })
afterAll(() => { base?.ctx.device.destroy() })

describe.each(TUNINGS)('webgpu matmul vs cpu (%s)', (_name, tuning) => {
  let ops: WebGpuOps
  beforeAll(async () => { ops = await WebGpuOps.create({ device: base.ctx.device, tuning }) })

  it.each(DTYPES)('%s over seeded random shapes', async dtype => {
    const r = rng(dtype.length * 7919 + JSON.stringify(tuning).length)
    const quant = dtype === 'Q8_0' || dtype === 'Q4_0'
    for (let c = 0; c < 6; c++) {
      const rows = r.int(1, 70)
      const cols = quant ? 32 * r.int(1, 6) : r.int(1, 150)
      const n = c === 0 ? 1 : r.int(1, 19)
      const t = tensorOf(dtype, rows, cols, r.normal(rows * cols))
      const x = r.normal(n * cols)
      const want = new Float32Array(n * rows)
      matmul(cpuMatrix(t), x, n, want)
      const got = await ops.matmul(t, x, n)
      const scale = magnitudes(t, x, n)
      expect(firstDifference(got, want, i => 2e-6 * scale[i]), `${dtype} (${rows} x ${cols}) · x with ${n} positions`).toBeUndefined()
    }
  })
})

describe('webgpu embedding lookup vs cpu readRow', () => {
  it.each(DTYPES)('%s rows are bit-identical', async dtype => {
    const r = rng(31 + dtype.length)
    const quant = dtype === 'Q8_0' || dtype === 'Q4_0'
    for (let c = 0; c < 3; c++) {
      const rows = r.int(2, 90)
      const cols = quant ? 32 * r.int(1, 5) : r.int(1, 99)
      const t = tensorOf(dtype, rows, cols, r.normal(rows * cols))
      const tokens = Array.from({ length: r.int(1, 9) }, () => r.int(0, rows - 1))
      const want = new Float32Array(tokens.length * cols)
      const m = cpuMatrix(t)
      tokens.forEach((id, i) => readRow(m, id, want, i * cols))
      const got = await base.embedding(t, tokens)
      expect(firstDifference(got, want, () => 0), `${dtype} (${rows} x ${cols}), tokens ${tokens.join(',')}`).toBeUndefined()
    }
  })
})

describe('weights larger than one storage binding are split by rows', () => {
  it.each(DTYPES)('%s: chunked matmul and lookup equal the single-buffer results bit for bit', async dtype => {
    const r = rng(101 + dtype.length)
    const rows = 77
    const cols = dtype === 'Q8_0' || dtype === 'Q4_0' ? 96 : 90
    const t = tensorOf(dtype, rows, cols, r.normal(rows * cols))
    const small = await WebGpuOps.create({ device: base.ctx.device, maxBindingBytes: 2048 })
    const split = small.upload(t)
    expect(split.chunks.length).toBeGreaterThan(1)
    expect(split.chunks.reduce((s, c) => s + c.rows, 0)).toBe(rows)
    const x = r.normal(3 * cols)
    const whole = await base.matmul(t, x, 3)
    expect(firstDifference(await small.matmul(split, x, 3), whole, () => 0)).toBeUndefined()
    const tokens = [0, rows - 1, 40, 13, 76]
    expect(firstDifference(await small.embedding(split, tokens), await base.embedding(t, tokens), () => 0)).toBeUndefined()
  })
})
