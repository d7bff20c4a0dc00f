import type { DType } from '../types.ts'

/** The dtypes this engine reads from and writes to safetensors files. */
export type SafetensorsDType = Extract<DType, 'F32' | 'F16' | 'BF16'>

/** Bytes per element of each supported dtype (safetensors spells them like our DType). */
export const SAFETENSORS_ELEMENT_BYTES: Record<SafetensorsDType, number> = { F32: 4, F16: 2, BF16: 2 }

export function isSafetensorsDType (dtype: string): dtype is SafetensorsDType {
  return Object.hasOwn(SAFETENSORS_ELEMENT_BYTES, dtype)
}
