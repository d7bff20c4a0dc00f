import { describe, expect, it } from 'vitest'
import { toFloat32 } from '@shardmesh/model'
import type { DType, Tensor } from '@shardmesh/model'
import { cpuMatrix, readRow } from '../src/cpu/matrix.ts'
import { matmul } from '../src/cpu/matmul.ts'
import { rng, tensorOf } from './weights-fixture.ts'

function randn (n: number, seed: number): Float32Array {
  return rng(seed).normal(n)
}

/** Reference: dequantize the whole matrix to F32 first, then a float64 dot product per row. */
function reference (t: Tensor, x: Float32Array, n: number): Float64Array {
  const [rows, cols] = t.shape
  const w = toFloat32(t)
  const y = new Float64Array(n * rows)
  for (let p = 0; p < n; p++) {
    for (let r = 0; r < rows; r++) {
      let s = 0
      for (let j = 0; j < cols; j++) s += w[r * cols + j] * x[p * cols + j]
      y[p * rows + r] = s
    }
  }
  return y
}

function firstDifference (got: Float32Array, want: Float64Array, tol: number): string | undefined {
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i] - want[i])
    if (!(err <= tol * (1 + Math.abs(want[i])))) return `index ${i}: got ${got[i]}, want ${want[i]}`
  }
  return undefined
}

describe('cpu matmul against dequantize-then-F32 references', () => {
  const shapes: Array<[number, number, number]> = [[7, 32, 1], [13, 96, 3], [5, 64, 4]]
  const unblocked: Array<[number, number, number]> = [[9, 37, 1], [3, 18, 5]]
  for (const dtype of ['F32', 'F16', 'Q8_0', 'Q4_0'] as DType[]) {
    const cases = dtype === 'F32' || dtype === 'F16' ? [...shapes, ...unblocked] : shapes
    it.each(cases)(`${dtype} (%i x %i) · x with %i positions`, (rows, cols, n) => {
      const t = tensorOf(dtype, rows, cols, randn(rows * cols, rows * 31 + cols))
      const x = randn(n * cols, 99 + n)
      const y = new Float32Array(n * rows)
      matmul(cpuMatrix(t), x, n, y)
      expect(firstDifference(y, reference(t, x, n), 1e-5)).toBeUndefined()
    })
  }

  it('gives bit-identical rows for a batch and for one position at a time', () => {
    for (const dtype of ['F32', 'F16', 'Q8_0', 'Q4_0'] as DType[]) {
      const rows = 11; const cols = 64; const n = 6
      const m = cpuMatrix(tensorOf(dtype, rows, cols, randn(rows * cols, 5)))
      const x = randn(n * cols, 6)
      const batch = new Float32Array(n * rows)
      matmul(m, x, n, batch)
      for (let p = 0; p < n; p++) {
        const one = new Float32Array(rows)
        matmul(m, x.subarray(p * cols, (p + 1) * cols), 1, one)
        expect(Array.from(one), `${dtype} position ${p}`).toEqual(Array.from(batch.subarray(p * rows, (p + 1) * rows)))
      }
    }
  })

  it('reads rows of every dtype like the full dequantization', () => {
    for (const dtype of ['F32', 'F16', 'Q8_0', 'Q4_0'] as DType[]) {
      const t = tensorOf(dtype, 4, 64, randn(256, 8))
      const full = toFloat32(t)
      const row = new Float32Array(64)
      readRow(cpuMatrix(t), 2, row)
      expect(Array.from(row), dtype).toEqual(Array.from(full.subarray(128, 192)))
    }
  })
})
