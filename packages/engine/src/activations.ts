import { f16Table, f32ToF16 } from '@shardmesh/model'
import type { ActivationDType } from './types.ts'

/** Hidden states as IEEE half bits (for the wire and output logs). */
export function toF16 (x: Float32Array): Uint16Array {
  const out = new Uint16Array(x.length)
  for (let i = 0; i < x.length; i++) out[i] = f32ToF16(x[i])
  return out
}

export function fromF16 (h: Uint16Array): Float32Array {
  const table = f16Table()
  const out = new Float32Array(h.length)
  for (let i = 0; i < h.length; i++) out[i] = table[h[i]]
  return out
}

/** Round hidden states to what `dtype` can carry, in place. */
export function roundActivations (x: Float32Array, dtype: ActivationDType): Float32Array {
  if (dtype === 'F32') return x
  const table = f16Table()
  for (let i = 0; i < x.length; i++) x[i] = table[f32ToF16(x[i])]
  return x
}

/** Index of the first NaN or infinity, or -1. */
export function firstNonFinite (x: Float32Array): number {
  for (let i = 0; i < x.length; i++) {
    if (!Number.isFinite(x[i])) return i
  }
  return -1
}
