import type { CpuMatrix } from './matrix.ts'

/**
 * y = x · Wᵀ for a batch: x `(n, cols)`, W `(rows, cols)`, y `(n, rows)`.
 * Runs the matrix's WebAssembly SIMD kernel (`wasm/kernels.ts`): x and y pass through the
 * arena's scratch region, each weight row is read once and applied to all n positions, and
 * the summation order of one dot product does not depend on n, so a prefill of n positions
 * gives bit-identical results to n single-position calls.
 */
export function matmul (w: CpuMatrix, x: Float32Array, n: number, y: Float32Array): void {
  const { arena, rows, cols } = w
  const xLength = n * cols
  const xAt = arena.scratch((xLength + n * rows) * 4)
  const yAt = xAt + xLength * 4
  arena.f32.set(x.subarray(0, xLength), xAt / 4)
  arena.matmul(w.layout, w.offset, rows, cols, xAt, n, yAt)
  y.set(arena.f32.subarray(yAt / 4, yAt / 4 + n * rows))
}
