import { groupsOf, X_GROUP_BYTES } from './wasm/kernel-q8-int.ts'
import type { WasmArena } from './wasm/arena.ts'

/** Bytes of n quantized rows of `cols` values. */
export const quantizedBytes = (n: number, cols: number): number => n * groupsOf(cols) * X_GROUP_BYTES

/** Scratch bytes `quantizeRows` uses at `at`: the quantized rows, then x staged as f32 (rows padded to whole groups). */
export const quantizeScratchBytes = (n: number, cols: number): number => quantizedBytes(n, cols) + n * groupsOf(cols) * 128 * 4

/**
 * Quantize x `(n, cols)` (cols a multiple of 32) per block of 32 values into the arena at
 * byte offset `at`, in the layout the `Q8_0_INT` kernel reads (`wasm/kernel-q8-int.ts`), with
 * the arena's SIMD quantizer (`wasm/kernel-q8-quantize.ts`): d = amax / 127 and
 * q = round(x / d) (halves away from zero), as ggml's reference `quantize_row_q8_0`, except
 * that d stays f32 (ggml rounds it to f16). Each row is quantized on its own, so a row's
 * result does not depend on the batch. Uses `quantizeScratchBytes(n, cols)` bytes at `at`.
 */
export function quantizeRows (arena: WasmArena, x: Float32Array, n: number, cols: number, at: number): void {
  const groups = groupsOf(cols)
  const padded = groups * 128
  const staged = at + quantizedBytes(n, cols)
  if (padded === cols) {
    arena.f32.set(x.subarray(0, n * cols), staged / 4)
  } else {
    for (let t = 0; t < n; t++) {
      const row = staged / 4 + t * padded
      arena.f32.set(x.subarray(t * cols, (t + 1) * cols), row)
      arena.f32.fill(0, row + cols, row + padded)
    }
  }
  arena.quantizeQ8(staged, n, groups, at)
}
