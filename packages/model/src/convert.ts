import { f32ToF16 } from './f16.ts'
import { QK, quantizeQ4_0, quantizeQ8_0, toFloat32 } from './quant.ts'
import type { Checkpoint, Tensor } from './types.ts'

/** Dtypes 2-D weight matrices can be converted to. */
export type MatrixDType = 'F32' | 'F16' | 'Q8_0' | 'Q4_0'

/** Float32 values as bytes of `dtype`. */
export function encodeValues (values: Float32Array, dtype: MatrixDType): Uint8Array {
  switch (dtype) {
    case 'F32': return new Uint8Array(values.buffer, values.byteOffset, values.byteLength)
    case 'F16': {
      const half = new Uint16Array(values.length)
      for (let i = 0; i < values.length; i++) half[i] = f32ToF16(values[i]) // a plain loop, not Uint16Array.from(values, fn) (a call per element)
      return new Uint8Array(half.buffer)
    }
    case 'Q8_0': return quantizeQ8_0(values)
    case 'Q4_0': return quantizeQ4_0(values)
  }
}

/**
 * A tensor in `dtype`. Rows that are not whole blocks of 32 cannot be quantized: such a
 * matrix keeps its dtype (as llama.cpp's quantize keeps a higher-precision type).
 */
export function convertTensor (t: Tensor, dtype: MatrixDType): Tensor {
  const blocked = dtype === 'Q8_0' || dtype === 'Q4_0'
  if (t.dtype === dtype || (blocked && t.shape[t.shape.length - 1] % QK !== 0)) return t
  return { name: t.name, dtype, shape: [...t.shape], data: encodeValues(toFloat32(t), dtype) }
}

/** The checkpoint with every 2-D weight matrix in `dtype`; 1-D norms stay as they are. */
export function quantizeCheckpoint (ckpt: Checkpoint, dtype: MatrixDType): Checkpoint {
  const tensors = new Map<string, Tensor>()
  for (const [name, t] of ckpt.tensors) tensors.set(name, t.shape.length === 2 ? convertTensor(t, dtype) : t)
  return { ...ckpt, tensors }
}
