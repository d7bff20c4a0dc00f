import type { CpuMatrix } from './matrix.ts'
import { quantizeRows, quantizeScratchBytes } from './q8-activations.ts'

/**
 * y = x · Wᵀ for a batch: x `(n, cols)`, W `(rows, cols)`, y `(n, rows)`.
 * Runs the matrix's WebAssembly SIMD kernel (`wasm/kernels.ts`): x and y pass through the
 * arena's scratch region, each weight row is read once and applied to all n positions, and
 * the summation order of one dot product does not depend on n, so a prefill of n positions
 * gives bit-identical results to n single-position calls. A `Q8_0_INT` matrix gets x
 * quantized to int8 per block of 32 first (`q8-activations.ts`), each row on its own.
 */
export function matmul (w: CpuMatrix, x: Float32Array, n: number, y: Float32Array): void {
  const { arena, rows, cols } = w
  const xLength = n * cols
  const xBytes = w.kernel === 'Q8_0_INT' ? quantizeScratchBytes(n, cols) : xLength * 4
  const xAt = arena.scratch(xBytes + n * rows * 4)
  const yAt = xAt + xBytes
  if (w.kernel === 'Q8_0_INT') quantizeRows(arena, x, n, cols, xAt)
  else arena.f32.set(x.subarray(0, xLength), xAt / 4)
  arena.matmul(w.kernel, w.offset, rows, cols, xAt, n, yAt)
  y.set(arena.f32.subarray(yAt / 4, yAt / 4 + n * rows))
}
