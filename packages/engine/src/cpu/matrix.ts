import { CorruptCheckpointError, UnsupportedTensorTypeError, f16Table, tensorByteLength, toFloat32 } from '@shardmesh/model'
import type { DType, Tensor } from '@shardmesh/model'
import { defaultArena } from './wasm/arena.ts'
import type { WasmArena } from './wasm/arena.ts'
import { rowBytes } from './wasm/kernels.ts'
import type { Layout } from './wasm/kernels.ts'

/**
 * A weight matrix `(rows, cols)` copied once into a WebAssembly memory, where the matmul
 * kernels read it. F32, F16, Q8_0 and Q4_0 keep their stored bytes (ggml block layouts);
 * BF16 is widened to F32 on the way in. Quantized and half matrices are never expanded to
 * F32 as a whole: the kernels dequantize block by block.
 */
export interface CpuMatrix {
  name: string
  /** The dtype the tensor was stored in. */
  dtype: DType
  rows: number
  cols: number
  /** How the copy in `arena` is laid out. */
  layout: Layout
  arena: WasmArena
  /** Byte offset of row 0 in the arena's memory. */
  offset: number
}

const LAYOUT: Partial<Record<DType, Layout>> = { F32: 'F32', BF16: 'F32', F16: 'F16', Q8_0: 'Q8_0', Q4_0: 'Q4_0' }

/** Copy a tensor into `arena` (by default the process-wide one) as a matrix for `matmul`. */
export function cpuMatrix (t: Tensor, arena: WasmArena = defaultArena()): CpuMatrix {
  const layout = LAYOUT[t.dtype]
  if (layout === undefined) {
    throw new UnsupportedTensorTypeError(`tensor ${t.name}: dtype ${String(t.dtype)} is not supported by the cpu backend`)
  }
  const [rows, cols] = t.shape.length === 2 ? t.shape : [1, t.shape[0]]
  const need = tensorByteLength(t.dtype, t.shape, t.name)
  if (t.data.byteLength !== need) {
    throw new CorruptCheckpointError(`${t.name}: ${t.dtype} [${t.shape.join(', ')}] needs ${need} bytes, has ${t.data.byteLength}`)
  }
  const offset = arena.alloc(rows * rowBytes(layout, cols))
  if (t.dtype === 'BF16') {
    const out = new Uint32Array(arena.memory.buffer, offset, rows * cols)
    for (let i = 0; i < rows * cols; i++) out[i] = (t.data[2 * i] | (t.data[2 * i + 1] << 8)) << 16
  } else {
    arena.bytes.set(t.data, offset)
  }
  if (t.dtype === 'F16') {
    const u = new Uint16Array(arena.memory.buffer, offset, rows * cols)
    for (let i = 0; i < u.length; i++) {
      if ((u[i] & 0x7c00) === 0x7c00) throw new CorruptCheckpointError(`${t.name}: F16 value ${i} is Inf or NaN`)
    }
  }
  return { name: t.name, dtype: t.dtype, rows, cols, layout, arena, offset }
}

/** Row `r` of `m` as float32 into `out` (embedding lookup). */
export function readRow (m: CpuMatrix, r: number, out: Float32Array, outOffset = 0): void {
  const { cols, arena } = m
  const at = m.offset + r * rowBytes(m.layout, cols)
  const buffer = arena.memory.buffer
  switch (m.layout) {
    case 'F32':
      out.set(new Float32Array(buffer, at, cols), outOffset)
      return
    case 'F16': {
      const table = f16Table()
      const u = new Uint16Array(buffer, at, cols)
      for (let j = 0; j < cols; j++) out[outOffset + j] = table[u[j]]
      return
    }
    case 'Q8_0': {
      const table = f16Table()
      const b = new Uint8Array(buffer, at, (cols / 32) * 34)
      const q = new Int8Array(buffer, at, (cols / 32) * 34)
      for (let blk = 0; blk < cols / 32; blk++) {
        const o = blk * 34
        const d = table[b[o] | (b[o + 1] << 8)]
        for (let k = 0; k < 32; k++) out[outOffset + blk * 32 + k] = d * q[o + 2 + k]
      }
      return
    }
    case 'Q4_0': {
      const table = f16Table()
      const b = new Uint8Array(buffer, at, (cols / 32) * 18)
      for (let blk = 0; blk < cols / 32; blk++) {
        const o = blk * 18
        const d = table[b[o] | (b[o + 1] << 8)]
        for (let k = 0; k < 16; k++) {
          const v = b[o + 2 + k]
          out[outOffset + blk * 32 + k] = d * ((v & 15) - 8)
          out[outOffset + blk * 32 + k + 16] = d * ((v >> 4) - 8)
        }
      }
    }
  }
}

/** The whole (small) tensor as float32: norms and other vectors. */
export function vectorF32 (t: Tensor): Float32Array {
  return toFloat32(t)
}
