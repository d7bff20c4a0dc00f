import { f16Table, bf16ToF32 } from '@shardmesh/model'
import type { CpuMatrix } from './matrix.ts'

/**
 * y = x · Wᵀ for a batch: x `(n, cols)`, W `(rows, cols)`, y `(n, rows)`.
 * Each weight row is read once and applied to all n positions while it is in cache.
 * The summation order of one dot product does not depend on n, so a prefill of n
 * positions gives bit-identical results to n single-position calls.
 */
export function matmul (w: CpuMatrix, x: Float32Array, n: number, y: Float32Array): void {
  switch (w.dtype) {
    case 'F32': return matmulF32(w, x, n, y)
    case 'F16': return matmulHalf(w, x, n, y, f16Table())
    case 'BF16': return matmulHalf(w, x, n, y, undefined)
    case 'Q8_0': return matmulQ8_0(w, x, n, y)
    case 'Q4_0': return matmulQ4_0(w, x, n, y)
  }
}

function matmulF32 (w: CpuMatrix, x: Float32Array, n: number, y: Float32Array): void {
  const { rows, cols } = w
  const a = w.f32!
  const tail = cols & ~3
  for (let r = 0; r < rows; r++) {
    const o = r * cols
    for (let t = 0; t < n; t++) {
      const xo = t * cols
      let s0 = 0; let s1 = 0; let s2 = 0; let s3 = 0
      let j = 0
      for (; j < tail; j += 4) {
        s0 += a[o + j] * x[xo + j]
        s1 += a[o + j + 1] * x[xo + j + 1]
        s2 += a[o + j + 2] * x[xo + j + 2]
        s3 += a[o + j + 3] * x[xo + j + 3]
      }
      for (; j < cols; j++) s0 += a[o + j] * x[xo + j]
      y[t * rows + r] = (s0 + s1) + (s2 + s3)
    }
  }
}

function matmulHalf (w: CpuMatrix, x: Float32Array, n: number, y: Float32Array, table: Float32Array | undefined): void {
  const { rows, cols } = w
  const u = w.u16!
  const row = new Float32Array(cols)
  for (let r = 0; r < rows; r++) {
    const o = r * cols
    if (table !== undefined) for (let j = 0; j < cols; j++) row[j] = table[u[o + j]]
    else for (let j = 0; j < cols; j++) row[j] = bf16ToF32(u[o + j])
    for (let t = 0; t < n; t++) y[t * rows + r] = dot(row, x, t * cols, cols)
  }
}

function dot (a: Float32Array, x: Float32Array, xo: number, cols: number): number {
  let s0 = 0; let s1 = 0; let s2 = 0; let s3 = 0
  const tail = cols & ~3
  let j = 0
  for (; j < tail; j += 4) {
    s0 += a[j] * x[xo + j]
    s1 += a[j + 1] * x[xo + j + 1]
    s2 += a[j + 2] * x[xo + j + 2]
    s3 += a[j + 3] * x[xo + j + 3]
  }
  for (; j < cols; j++) s0 += a[j] * x[xo + j]
  return (s0 + s1) + (s2 + s3)
}

function matmulQ8_0 (w: CpuMatrix, x: Float32Array, n: number, y: Float32Array): void {
  const { rows, cols } = w
  const b = w.bytes!
  const q = new Int8Array(b.buffer, b.byteOffset, b.byteLength)
  const table = f16Table()
  const blocks = cols / 32
  const rowBytes = blocks * 34
  for (let r = 0; r < rows; r++) {
    for (let t = 0; t < n; t++) {
      const xo = t * cols
      let s = 0
      for (let blk = 0; blk < blocks; blk++) {
        const o = r * rowBytes + blk * 34
        const xb = xo + blk * 32
        const qo = o + 2
        let s0 = 0; let s1 = 0; let s2 = 0; let s3 = 0
        for (let k = 0; k < 32; k += 4) {
          s0 += q[qo + k] * x[xb + k]
          s1 += q[qo + k + 1] * x[xb + k + 1]
          s2 += q[qo + k + 2] * x[xb + k + 2]
          s3 += q[qo + k + 3] * x[xb + k + 3]
        }
        s += table[b[o] | (b[o + 1] << 8)] * ((s0 + s1) + (s2 + s3))
      }
      y[t * rows + r] = s
    }
  }
}

function matmulQ4_0 (w: CpuMatrix, x: Float32Array, n: number, y: Float32Array): void {
  const { rows, cols } = w
  const b = w.bytes!
  const table = f16Table()
  const blocks = cols / 32
  const rowBytes = blocks * 18
  for (let r = 0; r < rows; r++) {
    for (let t = 0; t < n; t++) {
      const xo = t * cols
      let s = 0
      for (let blk = 0; blk < blocks; blk++) {
        const o = r * rowBytes + blk * 18
        const xb = xo + blk * 32
        let lo = 0; let hi = 0
        for (let k = 0; k < 16; k++) {
          const v = b[o + 2 + k]
          lo += ((v & 15) - 8) * x[xb + k]
          hi += ((v >> 4) - 8) * x[xb + k + 16]
        }
        s += table[b[o] | (b[o + 1] << 8)] * (lo + hi)
      }
      y[t * rows + r] = s
    }
  }
}
