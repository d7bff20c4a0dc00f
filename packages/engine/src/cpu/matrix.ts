import { convertTensor, CorruptCheckpointError, UnsupportedTensorTypeError, f16Table, tensorByteLength, toFloat32 } from '@shardmesh/model'
import type { DType, Tensor } from '@shardmesh/model'
import { defaultArena } from './wasm/arena.ts'
import type { WasmArena } from './wasm/arena.ts'
import { rowBytes } from './wasm/kernels.ts'
import type { ExactLayout, KernelId, Layout } from './wasm/kernels.ts'
import { packQ8X4, readQ8X4Row } from './q8-x4.ts'

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
  /** How the copy in `arena` is laid out (`Q8_0_X4` for the `Q8_0_INT` kernel). */
  layout: Layout
  /** The kernel `matmul` runs: the layout's exact one, or `Q8_0_INT` on `Q8_0_X4` (activations quantized to int8, see `CpuQuant`). */
  kernel: KernelId
  arena: WasmArena
  /** Byte offset of row 0 in the arena's memory. */
  offset: number
}

const LAYOUT: Partial<Record<DType, ExactLayout>> = { F32: 'F32', BF16: 'F32', F16: 'F16', Q8_0: 'Q8_0', Q4_0: 'Q4_0' }

/**
 * The opt-in approximate matmul path: `'q8_0'` holds F32, F16 and BF16 matrices as Q8_0
 * (quantized on load; rows that are not whole blocks of 32 keep their dtype and the exact
 * kernel) and multiplies every Q8_0 matrix with activations quantized to int8 per block of 32
 * (`q8-activations.ts`), in integer dot products. Q4_0 matrices keep the exact kernel.
 */
export type CpuQuant = 'q8_0'

/** Copy a tensor into `arena` (by default the process-wide one) as a matrix for `matmul`. */
export function cpuMatrix (stored: Tensor, arena: WasmArena = defaultArena(), quant?: CpuQuant): CpuMatrix {
  if (LAYOUT[stored.dtype] === undefined) {
    throw new UnsupportedTensorTypeError(`tensor ${stored.name}: dtype ${String(stored.dtype)} is not supported by the cpu backend`)
  }
  const need = tensorByteLength(stored.dtype, stored.shape, stored.name)
  if (stored.data.byteLength !== need) {
    throw new CorruptCheckpointError(`${stored.name}: ${stored.dtype} [${stored.shape.join(', ')}] needs ${need} bytes, has ${stored.data.byteLength}`)
  }
  if (stored.dtype === 'F16') checkHalves(stored)
  const t = quant === 'q8_0' && stored.dtype !== 'Q4_0' ? convertTensor(stored, 'Q8_0') : stored
  const [rows, cols] = t.shape.length === 2 ? t.shape : [1, t.shape[0]]
  const integer = quant === 'q8_0' && t.dtype === 'Q8_0'
  const layout: Layout = integer ? 'Q8_0_X4' : LAYOUT[t.dtype]!
  const offset = arena.alloc(rows * rowBytes(layout, cols))
  if (integer) {
    packQ8X4(t.data, rows, cols, arena.bytes, offset)
  } else if (t.dtype === 'BF16') {
    const out = new Uint32Array(arena.memory.buffer, offset, rows * cols)
    for (let i = 0; i < rows * cols; i++) out[i] = (t.data[2 * i] | (t.data[2 * i + 1] << 8)) << 16
  } else {
    arena.bytes.set(t.data, offset)
  }
  const kernel = layout === 'Q8_0_X4' ? 'Q8_0_INT' : layout
  return { name: t.name, dtype: stored.dtype, rows, cols, layout, kernel, arena, offset }
}

/** F16 weights must be finite (the kernels' half conversion does not handle Inf or NaN). */
function checkHalves (t: Tensor): void {
  for (let i = 0; i < t.data.byteLength / 2; i++) {
    if ((t.data[2 * i + 1] & 0x7c) === 0x7c) throw new CorruptCheckpointError(`${t.name}: F16 value ${i} is Inf or NaN`)
  }
}

/** Row `r` of `m` as float32 into `out` (embedding lookup). */
export function readRow (m: CpuMatrix, r: number, out: Float32Array, outOffset = 0): void {
  const { cols, arena } = m
  const at = m.offset + r * rowBytes(m.layout, cols)
  const buffer = arena.memory.buffer
  switch (m.layout) {
    case 'Q8_0_X4':
      readQ8X4Row(arena.bytes, m.offset, r, cols, out, outOffset)
      return
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
