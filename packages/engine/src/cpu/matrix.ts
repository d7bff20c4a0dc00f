import { UnsupportedTensorTypeError, f16Table, bf16ToF32 } from '@shardmesh/model'
import type { DType, Tensor } from '@shardmesh/model'

/**
 * A weight matrix `(rows, cols)` kept in its stored dtype. Quantized and half matrices are
 * never expanded to F32 as a whole: kernels convert one element (or block) at a time.
 */
export interface CpuMatrix {
  name: string
  dtype: DType
  rows: number
  cols: number
  /** F32 data (4-aligned copy when the file's view was not aligned). */
  f32?: Float32Array
  /** F16 / BF16 bits. */
  u16?: Uint16Array
  /** Q8_0 / Q4_0 blocks. */
  bytes?: Uint8Array
}

function aligned (data: Uint8Array, width: number): ArrayBuffer | SharedArrayBuffer {
  if (data.byteOffset % width === 0) return data.buffer
  return data.slice().buffer
}

function offsetOf (data: Uint8Array, width: number): number {
  return data.byteOffset % width === 0 ? data.byteOffset : 0
}

export function cpuMatrix (t: Tensor): CpuMatrix {
  const [rows, cols] = t.shape.length === 2 ? t.shape : [1, t.shape[0]]
  const m: CpuMatrix = { name: t.name, dtype: t.dtype, rows, cols }
  const n = rows * cols
  switch (t.dtype) {
    case 'F32':
      m.f32 = new Float32Array(aligned(t.data, 4), offsetOf(t.data, 4), n)
      break
    case 'F16':
    case 'BF16':
      m.u16 = new Uint16Array(aligned(t.data, 2), offsetOf(t.data, 2), n)
      break
    case 'Q8_0':
    case 'Q4_0':
      m.bytes = t.data
      break
    default:
      throw new UnsupportedTensorTypeError(`tensor ${t.name}: dtype ${String(t.dtype)} is not supported by the cpu backend`)
  }
  return m
}

/** Row `r` of `m` as float32 into `out` (embedding lookup, vectors). */
export function readRow (m: CpuMatrix, r: number, out: Float32Array, outOffset = 0): void {
  const cols = m.cols
  switch (m.dtype) {
    case 'F32':
      out.set(m.f32!.subarray(r * cols, (r + 1) * cols), outOffset)
      return
    case 'F16': {
      const table = f16Table()
      const u = m.u16!
      for (let j = 0; j < cols; j++) out[outOffset + j] = table[u[r * cols + j]]
      return
    }
    case 'BF16': {
      const u = m.u16!
      for (let j = 0; j < cols; j++) out[outOffset + j] = bf16ToF32(u[r * cols + j])
      return
    }
    case 'Q8_0': {
      const table = f16Table()
      const b = m.bytes!
      const rowBytes = (cols / 32) * 34
      for (let blk = 0; blk < cols / 32; blk++) {
        const o = r * rowBytes + blk * 34
        const d = table[b[o] | (b[o + 1] << 8)]
        for (let k = 0; k < 32; k++) out[outOffset + blk * 32 + k] = d * ((b[o + 2 + k] << 24) >> 24)
      }
      return
    }
    case 'Q4_0': {
      const table = f16Table()
      const b = m.bytes!
      const rowBytes = (cols / 32) * 18
      for (let blk = 0; blk < cols / 32; blk++) {
        const o = r * rowBytes + blk * 18
        const d = table[b[o] | (b[o + 1] << 8)]
        for (let k = 0; k < 16; k++) {
          const q = b[o + 2 + k]
          out[outOffset + blk * 32 + k] = d * ((q & 15) - 8)
          out[outOffset + blk * 32 + k + 16] = d * ((q >> 4) - 8)
        }
      }
    }
  }
}

/** The whole (small) tensor as float32: norms and other vectors. */
export function vectorF32 (t: Tensor): Float32Array {
  const m = cpuMatrix(t)
  const out = new Float32Array(m.rows * m.cols)
  for (let r = 0; r < m.rows; r++) readRow(m, r, out, r * m.cols)
  return out
}
