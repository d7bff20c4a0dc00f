import { ACT_BLOCK_BYTES } from './wasm/kernel-q8-int.ts'
import type { WasmArena } from './wasm/arena.ts'

/**
 * Quantize x `(n, cols)` (cols a multiple of 32) per block of 32 values into the arena at
 * byte offset `at`, in the layout the `Q8_0_INT` kernel reads (`wasm/kernel-q8-int.ts`):
 * d = amax / 127 and q = round(x / d) (halves away from zero), as ggml's reference
 * `quantize_row_q8_0`, except that d stays f32 (ggml rounds it to f16). Each row is
 * quantized on its own, so a row's result does not depend on the batch.
 */
export function quantizeRows (arena: WasmArena, x: Float32Array, n: number, cols: number, at: number): void {
  const blocks = cols / 32
  const i16 = arena.i16
  const f32 = arena.f32
  for (let t = 0; t < n; t++) {
    for (let b = 0; b < blocks; b++) {
      const src = t * cols + b * 32
      const dst = at + (t * blocks + b) * ACT_BLOCK_BYTES
      let amax = 0
      for (let j = 0; j < 32; j++) {
        const a = Math.abs(x[src + j])
        if (a > amax) amax = a
      }
      const d = Math.fround(amax / 127)
      const id = d !== 0 ? Math.fround(1 / d) : 0
      for (let j = 0; j < 32; j++) {
        const v = Math.fround(x[src + j] * id)
        i16[dst / 2 + j] = v < 0 ? -Math.round(-v) : Math.round(v)
      }
      f32[dst / 4 + 16] = d
    }
  }
}

/** Bytes of n quantized rows of `cols` values. */
export const quantizedBytes = (n: number, cols: number): number => n * (cols / 32) * ACT_BLOCK_BYTES
