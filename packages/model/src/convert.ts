import { f32ToF16 } from './f16.ts'
import { quantizeQ4_0, quantizeQ8_0, toFloat32 } from './quant.ts'
import type { Checkpoint, DType, Tensor } from './types.ts'

/** Dtypes 2-D weight matrices can be converted to. */
export type MatrixDType = 'F32' | 'F16' | 'Q8_0' | 'Q4_0'

/** One tensor's values in `dtype` (through F32). */
export function convertTensor (t: Tensor, dtype: DType): Tensor {
  if (t.dtype === dtype) return t
  const values = toFloat32(t)
  let data: Uint8Array
  switch (dtype) {
    case 'F32': data = new Uint8Array(values.buffer, values.byteOffset, values.byteLength); break
    case 'F16': data = new Uint8Array(Uint16Array.from(values, v => f32ToF16(v)).buffer); break
    case 'Q8_0': data = quantizeQ8_0(values); break
    case 'Q4_0': data = quantizeQ4_0(values); break
    default: throw new RangeError(`cannot convert ${t.name} to ${dtype}`)
  }
  return { name: t.name, dtype, shape: [...t.shape], data }
}

/**
 * The checkpoint with every 2-D weight matrix in `dtype`; 1-D norms stay as they are.
 * Quantizing to Q8_0 / Q4_0 needs rows that are whole blocks of 32.
 */
export function quantizeCheckpoint (ckpt: Checkpoint, dtype: MatrixDType): Checkpoint {
  const tensors = new Map<string, Tensor>()
  for (const [name, t] of ckpt.tensors) tensors.set(name, t.shape.length === 2 ? convertTensor(t, dtype) : t)
  return { ...ckpt, tensors }
}
