import { CorruptCheckpointError, UnsupportedTensorTypeError, tensorByteLength } from '@shardmesh/model'
import type { DType, Tensor } from '@shardmesh/model'
import { WebGpuError } from '../errors.ts'
import type { GpuContext } from './context.ts'

/** Row range of a matrix that lives in its own buffers (one storage binding each). */
export interface MatrixChunk {
  row0: number
  rows: number
  /** F32 / F16 / BF16 values, or the quants of Q8_0 / Q4_0: (rows, units). */
  data: GPUBuffer
  /** Q8_0 / Q4_0 block scales, two f16 per u32: (rows · blocks). */
  scales?: GPUBuffer
}

/**
 * A weight matrix `(rows, cols)` uploaded once in its stored dtype, repacked so WGSL reads
 * aligned words: rows of F32/F16/BF16 zero-padded to a multiple of 4 elements; Q8_0 and
 * Q4_0 blocks (34 and 18 bytes, not 4-aligned) split into a scale array and a quant array.
 * Split by rows into chunks when one would exceed the largest storage binding.
 */
export interface GpuMatrix {
  name: string
  dtype: DType
  rows: number
  cols: number
  /** Elements per unit: 4 (F32, F16, BF16) or 8 (Q8_0, Q4_0). */
  unit: number
  /** Units per (padded) row. */
  units: number
  chunks: MatrixChunk[]
  /** Bytes on the GPU. */
  bytes: number
}

/** Bytes per (padded) row in the data array, and in the scale array. */
function rowBytes (dtype: DType, cols: number): [number, number] {
  const padded = Math.ceil(cols / 4) * 4
  switch (dtype) {
    case 'F32': return [padded * 4, 0]
    case 'F16': case 'BF16': return [padded * 2, 0]
    case 'Q8_0': return [cols, (cols / 32) * 2]
    case 'Q4_0': return [cols / 2, (cols / 32) * 2]
    default: throw new UnsupportedTensorTypeError(`dtype ${String(dtype)} is not supported by the webgpu backend`)
  }
}

export function uploadMatrix (ctx: GpuContext, t: Tensor): GpuMatrix {
  const [rows, cols] = t.shape.length === 2 ? t.shape : [1, t.shape[0]]
  const need = tensorByteLength(t.dtype, t.shape, t.name)
  if (t.data.byteLength !== need) {
    throw new CorruptCheckpointError(`${t.name}: ${t.dtype} [${t.shape.join(', ')}] needs ${need} bytes, has ${t.data.byteLength}`)
  }
  const quant = t.dtype === 'Q8_0' || t.dtype === 'Q4_0'
  const unit = quant ? 8 : 4
  const [dataRow, scaleRow] = rowBytes(t.dtype, cols)
  // scale arrays are padded to whole words, so chunks hold an even number of rows
  const perChunk = Math.floor(ctx.maxBindingBytes / Math.max(dataRow, scaleRow) / 2) * 2
  if (perChunk < 1 || (perChunk < 2 && quant)) {
    throw new WebGpuError('limit', `${t.name}: two rows of ${dataRow} bytes exceed the largest storage binding (${ctx.maxBindingBytes} bytes)`)
  }
  const chunks: MatrixChunk[] = []
  let bytes = 0
  for (let row0 = 0; row0 < rows; row0 += perChunk) {
    const n = Math.min(perChunk, rows - row0)
    const label = `${t.name}[${row0}:${row0 + n}]`
    const [data, scales] = repack(t, cols, row0, n)
    const chunk: MatrixChunk = { row0, rows: n, data: ctx.storage(data.byteLength, label) }
    ctx.device.queue.writeBuffer(chunk.data, 0, data.buffer, data.byteOffset, data.byteLength)
    bytes += chunk.data.size
    if (scales !== undefined) {
      chunk.scales = ctx.storage(scales.byteLength, label + '.scales')
      ctx.device.queue.writeBuffer(chunk.scales, 0, scales.buffer, scales.byteOffset, scales.byteLength)
      bytes += chunk.scales.size
    }
    chunks.push(chunk)
  }
  return { name: t.name, dtype: t.dtype, rows, cols, unit, units: Math.ceil(cols / unit), chunks, bytes }
}

/** Rows [row0, row0 + n) in GPU layout: the data bytes, and for quantized dtypes the scales. */
function repack (t: Tensor, cols: number, row0: number, n: number): [Uint8Array, Uint8Array?] {
  const src = t.data
  if (t.dtype === 'Q8_0' || t.dtype === 'Q4_0') {
    const blockBytes = t.dtype === 'Q8_0' ? 34 : 18
    const quantBytes = blockBytes - 2
    const blocks = n * (cols / 32)
    const first = row0 * (cols / 32)
    const quants = new Uint8Array(blocks * quantBytes)
    const scales = new Uint8Array(Math.ceil(blocks / 2) * 4)
    for (let b = 0; b < blocks; b++) {
      const o = (first + b) * blockBytes
      scales[2 * b] = src[o]
      scales[2 * b + 1] = src[o + 1]
      quants.set(src.subarray(o + 2, o + blockBytes), b * quantBytes)
    }
    return [quants, scales]
  }
  const width = t.dtype === 'F32' ? 4 : 2
  const padded = Math.ceil(cols / 4) * 4
  if (padded === cols) return [src.subarray(row0 * cols * width, (row0 + n) * cols * width)]
  const out = new Uint8Array(n * padded * width)
  for (let r = 0; r < n; r++) {
    out.set(src.subarray((row0 + r) * cols * width, (row0 + r + 1) * cols * width), r * padded * width)
  }
  return [out]
}

export function destroyMatrix (m: GpuMatrix): void {
  for (const c of m.chunks) {
    c.data.destroy()
    c.scales?.destroy()
  }
}
