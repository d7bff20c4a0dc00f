import { CorruptCheckpointError } from './errors.ts'
import { bf16ToF32, f16Table, f32ToF16 } from './f16.ts'
import type { DType, Tensor } from './types.ts'

/** Values per block in ggml's Q8_0 and Q4_0 formats. */
export const QK = 32
/** Q8_0 block: f16 scale + 32 int8. */
const Q8_0_BYTES = 34
/** Q4_0 block: f16 scale + 16 bytes of nibble pairs. */
const Q4_0_BYTES = 18

/** C `roundf`: halves round away from zero (Math.round rounds them up). */
function roundf (x: number): number {
  return x < 0 ? -Math.round(-x) : Math.round(x)
}

function blockCount (n: number, what: string): number {
  if (!Number.isInteger(n) || n < 0 || n % QK !== 0) {
    throw new CorruptCheckpointError(`${what}: ${n} values is not a multiple of the block size ${QK}`)
  }
  return n / QK
}

function checkLength (bytes: Uint8Array, need: number, what: string): void {
  if (bytes.byteLength < need) {
    throw new CorruptCheckpointError(`${what}: need ${need} bytes, got ${bytes.byteLength}`)
  }
}

/** Quantize to Q8_0 like ggml's `quantize_row_q8_0_ref`: d = amax/127, q = roundf(x/d). */
export function quantizeQ8_0 (src: Float32Array): Uint8Array {
  const nb = blockCount(src.length, 'quantizeQ8_0')
  const out = new Uint8Array(nb * Q8_0_BYTES)
  for (let b = 0; b < nb; b++) {
    const x = src.subarray(b * QK, (b + 1) * QK)
    let amax = 0
    for (let j = 0; j < QK; j++) amax = Math.max(amax, Math.abs(x[j]))
    const d = Math.fround(amax / 127)
    const id = d !== 0 ? Math.fround(1 / d) : 0
    const o = b * Q8_0_BYTES
    const h = f32ToF16(d)
    out[o] = h & 0xff
    out[o + 1] = h >> 8
    for (let j = 0; j < QK; j++) out[o + 2 + j] = roundf(Math.fround(x[j] * id)) & 0xff
  }
  return out
}

/** Dequantize the first `n` values (a multiple of 32) of Q8_0 data: value = d * q. */
export function dequantizeQ8_0 (bytes: Uint8Array, n: number): Float32Array {
  const nb = blockCount(n, 'dequantizeQ8_0')
  checkLength(bytes, nb * Q8_0_BYTES, 'dequantizeQ8_0')
  const half = f16Table()
  const out = new Float32Array(n)
  for (let b = 0; b < nb; b++) {
    const o = b * Q8_0_BYTES
    const d = half[bytes[o] | (bytes[o + 1] << 8)]
    for (let j = 0; j < QK; j++) out[b * QK + j] = d * ((bytes[o + 2 + j] << 24) >> 24)
  }
  return out
}

/**
 * Quantize to Q4_0 like ggml's `quantize_row_q4_0_ref`: d = max/-8 where max is the value of
 * largest magnitude (sign kept), q = min(15, trunc(x/d + 8.5)). Byte j of a block holds
 * element j in its low nibble and element j+16 in its high nibble.
 */
export function quantizeQ4_0 (src: Float32Array): Uint8Array {
  const nb = blockCount(src.length, 'quantizeQ4_0')
  const out = new Uint8Array(nb * Q4_0_BYTES)
  const nibble = (v: number, id: number): number => Math.min(15, Math.trunc(Math.fround(Math.fround(v * id) + 8.5)))
  for (let b = 0; b < nb; b++) {
    const x = src.subarray(b * QK, (b + 1) * QK)
    let amax = 0
    let max = 0
    for (let j = 0; j < QK; j++) {
      if (amax < Math.abs(x[j])) {
        amax = Math.abs(x[j])
        max = x[j]
      }
    }
    const d = Math.fround(max / -8)
    const id = d !== 0 ? Math.fround(1 / d) : 0
    const o = b * Q4_0_BYTES
    const h = f32ToF16(d)
    out[o] = h & 0xff
    out[o + 1] = h >> 8
    for (let j = 0; j < QK / 2; j++) out[o + 2 + j] = nibble(x[j], id) | (nibble(x[j + QK / 2], id) << 4)
  }
  return out
}

/** Dequantize the first `n` values (a multiple of 32) of Q4_0 data: value = (nibble - 8) * d. */
export function dequantizeQ4_0 (bytes: Uint8Array, n: number): Float32Array {
  const nb = blockCount(n, 'dequantizeQ4_0')
  checkLength(bytes, nb * Q4_0_BYTES, 'dequantizeQ4_0')
  const half = f16Table()
  const out = new Float32Array(n)
  for (let b = 0; b < nb; b++) {
    const o = b * Q4_0_BYTES
    const d = half[bytes[o] | (bytes[o + 1] << 8)]
    for (let j = 0; j < QK / 2; j++) {
      const q = bytes[o + 2 + j]
      out[b * QK + j] = ((q & 0x0f) - 8) * d
      out[b * QK + j + QK / 2] = ((q >> 4) - 8) * d
    }
  }
  return out
}

/**
 * Bytes of one row of `cols` values stored as `dtype`. Quantized rows must be whole blocks;
 * `name` (a tensor name) makes the error say which tensor broke that rule.
 */
export function bytesPerRow (dtype: DType, cols: number, name: string = dtype): number {
  if (!Number.isSafeInteger(cols) || cols < 0) {
    throw new CorruptCheckpointError(`${name}: invalid row length ${cols}`)
  }
  switch (dtype) {
    case 'F32': return cols * 4
    case 'F16':
    case 'BF16': return cols * 2
    case 'Q8_0':
    case 'Q4_0':
      if (cols % QK !== 0) {
        throw new CorruptCheckpointError(`${name}: ${dtype} rows need a multiple of ${QK} columns, got ${cols}`)
      }
      return (cols / QK) * (dtype === 'Q8_0' ? Q8_0_BYTES : Q4_0_BYTES)
  }
}

/** Bytes of a whole row-major tensor: rows = product of all but the innermost dimension. */
export function tensorByteLength (dtype: DType, shape: number[], name: string = dtype): number {
  if (shape.length === 0) return bytesPerRow(dtype, 1, name)
  let rows = 1
  for (const d of shape.slice(0, -1)) {
    if (!Number.isSafeInteger(d) || d < 0) throw new CorruptCheckpointError(`${name}: invalid shape [${shape.join(', ')}]`)
    rows *= d
  }
  const total = rows * bytesPerRow(dtype, shape[shape.length - 1], name)
  if (!Number.isSafeInteger(total)) throw new CorruptCheckpointError(`${name}: shape [${shape.join(', ')}] is too large`)
  return total
}

/** A tensor's values as a new float32 array, whatever its dtype (for references and small tensors). */
export function toFloat32 (tensor: Tensor): Float32Array {
  const n = tensor.shape.reduce((a, b) => a * b, 1)
  const need = tensorByteLength(tensor.dtype, tensor.shape, tensor.name)
  const data = tensor.data
  if (data.byteLength !== need) {
    throw new CorruptCheckpointError(`${tensor.name}: ${tensor.dtype} [${tensor.shape.join(', ')}] needs ${need} bytes, has ${data.byteLength}`)
  }
  switch (tensor.dtype) {
    case 'F32': return new Float32Array(data.slice().buffer) // copy: the view may be unaligned
    case 'F16': {
      const half = f16Table()
      const out = new Float32Array(n)
      for (let i = 0; i < n; i++) out[i] = half[data[2 * i] | (data[2 * i + 1] << 8)]
      return out
    }
    case 'BF16': {
      const out = new Float32Array(n)
      for (let i = 0; i < n; i++) out[i] = bf16ToF32(data[2 * i] | (data[2 * i + 1] << 8))
      return out
    }
    case 'Q8_0': return dequantizeQ8_0(data, n)
    case 'Q4_0': return dequantizeQ4_0(data, n)
  }
}
