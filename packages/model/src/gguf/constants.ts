import type { DType } from '../types.ts'

/** "GGUF" read as a little-endian uint32. */
export const GGUF_MAGIC = 0x46554747
export const GGUF_DEFAULT_ALIGNMENT = 32

/** GGUF metadata value type ids. */
export const ValueType = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12
} as const
export type ValueType = typeof ValueType[keyof typeof ValueType]

/** Bytes of one fixed-size value, by value type id (strings and arrays are variable). */
export const VALUE_SIZE: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 }

/** ggml tensor type ids of the dtypes we store. */
export const GGML_TYPE: Record<DType, number> = { F32: 0, F16: 1, Q4_0: 2, Q8_0: 8, BF16: 30 }

/** ggml type id → our dtype, for the supported ones. */
export const DTYPE_OF: ReadonlyMap<number, DType> = new Map(
  Object.entries(GGML_TYPE).map(([dtype, id]) => [id, dtype as DType])
)

/** ggml type names by id (gaps are ids ggml has retired), for error messages. */
const GGML_TYPE_NAMES = [
  'F32', 'F16', 'Q4_0', 'Q4_1', '', '', 'Q5_0', 'Q5_1', 'Q8_0', 'Q8_1', 'Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K',
  'Q8_K', 'IQ2_XXS', 'IQ2_XS', 'IQ3_XXS', 'IQ1_S', 'IQ4_NL', 'IQ3_S', 'IQ2_S', 'IQ4_XS', 'I8', 'I16', 'I32', 'I64',
  'F64', 'IQ1_M', 'BF16', '', '', '', 'TQ1_0', 'TQ2_0', '', '', '', 'MXFP4'
]

export function ggmlTypeName (id: number): string {
  return GGML_TYPE_NAMES[id] || 'unknown'
}
