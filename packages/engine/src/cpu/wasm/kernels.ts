import { FunctionBuilder, moduleBytes } from './builder.ts'
import { groupsOf, Q8_INT_EXPORT, q8IntMatmulFunction, W_GROUP_BYTES } from './kernel-q8-int.ts'
import { Q8_QUANTIZE_EXPORT, q8QuantizeFunction } from './kernel-q8-quantize.ts'

/**
 * The matmul kernels as one WebAssembly module. Every kernel has the signature
 * `(w, rows, cols, x, n, y, r0, r1, table)` (all i32; pointers are byte offsets):
 * for rows r in [r0, r1) and positions t in [0, n), `y[t * rows + r] = dot(W[r], x[t])`, with
 * W `(rows, cols)` at `w` in the kernel's layout, x `(n, cols)` f32, y `(n, rows)` f32 and
 * `table` the 65536-entry f16 → f32 table (block scales).
 *
 * Each dot product sums in a fixed order that depends only on `cols`, never on n or the row
 * range, so batches, single positions and row splits give bit-identical results.
 */
export type ExactLayout = 'F32' | 'F16' | 'Q8_0' | 'Q4_0'

/** How a matrix is stored: an exact kernel's layout, or `Q8_0_X4`, Q8_0 repacked for `Q8_0_INT` (`kernel-q8-int.ts`). */
export type Layout = ExactLayout | 'Q8_0_X4'

/** An exact layout's kernel, or `Q8_0_INT`: `Q8_0_X4` weights times int8-quantized activations (`kernel-q8-int.ts`). */
export type KernelId = ExactLayout | 'Q8_0_INT'

export const KERNEL_EXPORTS: Record<KernelId, string> = { F32: 'matmul_f32', F16: 'matmul_f16', Q8_0: 'matmul_q8_0', Q4_0: 'matmul_q4_0', Q8_0_INT: Q8_INT_EXPORT }

export type Kernel = (w: number, rows: number, cols: number, x: number, n: number, y: number, r0: number, r1: number, table: number) => void

/** Bytes of one weight row of `cols` values in `layout`. */
export function rowBytes (layout: Layout, cols: number): number {
  switch (layout) {
    case 'F32': return cols * 4
    case 'F16': return cols * 2
    case 'Q8_0': return (cols / 32) * 34
    case 'Q4_0': return (cols / 32) * 18
    case 'Q8_0_X4': return groupsOf(cols) * W_GROUP_BYTES
  }
}

const W = 0; const ROWS = 1; const COLS = 2; const X = 3; const N = 4; const Y = 5; const R0 = 6; const R1 = 7; const TABLE = 8

/** Emits code that leaves dot(row at local `row`, x at local `xp`) on the stack as f32. */
type DotEmitter = (f: FunctionBuilder, row: number, xp: number) => void

/** `v = zero` for each v128 local. */
function zero (f: FunctionBuilder, locals: number[]): void {
  for (const v of locals) f.i32x4(0).set(v)
}

/** Pushes (a0 + a1) + (a2 + a3) as f32x4. */
function sum4 (f: FunctionBuilder, a: number[]): void {
  f.get(a[0]).get(a[1]).op('f32x4.add').get(a[2]).get(a[3]).op('f32x4.add', 'f32x4.add')
}

/** Pushes the lanes of `v` summed as (l0 + l1) + (l2 + l3). */
function laneSum (f: FunctionBuilder, v: number): void {
  f.get(v).f32x4ExtractLane(0).get(v).f32x4ExtractLane(1).op('f32.add')
  f.get(v).f32x4ExtractLane(2).get(v).f32x4ExtractLane(3).op('f32.add', 'f32.add')
}

/** `a = a + (weights on the stack) * x[q + offset]`, or `a = ...` when `first`. */
function accumulate (f: FunctionBuilder, a: number, q: number, offset: number, first: boolean): void {
  f.get(q).mem('v128.load', offset).op('f32x4.mul')
  if (!first) f.get(a).op('f32x4.add')
  f.set(a)
}

/**
 * Dense rows (F32, F16): four accumulators over 16 values a step, then one accumulator over
 * 4 values a step, the lane sum, and a scalar tail for cols not divisible by 4.
 */
function denseDot (width: 2 | 4): DotEmitter {
  return (f, row, xp) => {
    const p = f.local('i32'); const q = f.local('i32'); const end16 = f.local('i32'); const end4 = f.local('i32'); const end = f.local('i32')
    const a = [f.local('v128'), f.local('v128'), f.local('v128'), f.local('v128')]
    const s = f.local('f32')
    const convert = width === 2 ? halfConverter(f) : undefined
    const load4 = (offset: number): void => {
      f.get(p)
      if (convert === undefined) f.mem('v128.load', offset)
      else convert(offset)
    }
    const endAt = (mask: number, local: number): void => {
      f.get(row).get(COLS).i32(mask).op('i32.and').i32(width === 4 ? 2 : 1).op('i32.shl', 'i32.add').set(local)
    }
    f.get(row).set(p).get(xp).set(q)
    endAt(~15, end16); endAt(~3, end4); endAt(~0, end)
    zero(f, a)
    f.whileBelow(p, end16, () => {
      for (let k = 0; k < 4; k++) {
        load4(k * 4 * width)
        accumulate(f, a[k], q, k * 16, false)
      }
      f.bump(p, 16 * width).bump(q, 64)
    })
    f.whileBelow(p, end4, () => {
      load4(0)
      accumulate(f, a[0], q, 0, false)
      f.bump(p, 4 * width).bump(q, 16)
    })
    sum4(f, a)
    f.set(a[0])
    laneSum(f, a[0])
    f.set(s)
    f.whileBelow(p, end, () => {
      if (width === 4) f.get(p).mem('f32.load')
      else f.get(TABLE).get(p).mem('i32.load16_u').i32(2).op('i32.shl', 'i32.add').mem('f32.load')
      f.get(q).mem('f32.load').op('f32.mul').get(s).op('f32.add').set(s)
      f.bump(p, width).bump(q, 4)
    })
    f.get(s)
  }
}

/**
 * Emits its constants, then returns an emitter that turns the address on the stack plus
 * `offset` into four f16 values as exact f32, subnormals included, with no float arithmetic
 * on denormals (slow on some CPUs). Inf and NaN are rejected when a matrix is loaded.
 */
function halfConverter (f: FunctionBuilder): (offset: number) => void {
  const t = f.local('v128'); const m = f.local('v128')
  const [mask, sign, bias, scale, smallest] = [0x0fffe000, 0x80000000 | 0, 112 << 23, 0x2d000000, 0x00800000].map(c => {
    const local = f.local('v128')
    f.i32x4(c).set(local)
    return local
  })
  return offset => {
    f.mem('v128.load16x4_s', offset).i32(13).op('i32x4.shl').set(t) // sign at bit 31, exponent and mantissa at 13..27
    f.get(t).get(mask).op('v128.and').set(m)
    f.get(m).op('f32x4.convert_i32x4_s').get(scale).op('f32x4.mul') // subnormal: mantissa·2^-24 = m·2^-37
    f.get(m).get(bias).op('i32x4.add') // normal: rebias the exponent from 15 to 127
    f.get(m).get(smallest).op('i32x4.lt_s', 'v128.bitselect')
    f.get(t).get(sign).op('v128.and', 'v128.or')
  }
}

/**
 * Quantized rows, 32 values per block: each block's dequantized values times x go into four
 * f32x4 partial sums, which are added, scaled by the block's d and added to one accumulator.
 * `values(g)` pushes values 4g..4g+3 of the block at local `p` as i32x4.
 */
function blockDot (blockBytes: number, prepare: (f: FunctionBuilder, p: number) => (g: number) => void): DotEmitter {
  return (f, row, xp) => {
    const p = f.local('i32'); const q = f.local('i32'); const end = f.local('i32')
    const a = [f.local('v128'), f.local('v128'), f.local('v128'), f.local('v128')]
    const acc = f.local('v128')
    const d = f.local('f32')
    f.get(row).set(p).get(xp).set(q)
    f.get(row).get(COLS).i32(5).op('i32.shr_u').i32(blockBytes).op('i32.mul', 'i32.add').set(end)
    zero(f, [acc])
    const values = prepare(f, p)
    f.whileBelow(p, end, () => {
      f.get(TABLE).get(p).mem('i32.load16_u').i32(2).op('i32.shl', 'i32.add').mem('f32.load').set(d)
      for (let g = 0; g < 8; g++) {
        values(g)
        f.op('f32x4.convert_i32x4_s')
        accumulate(f, a[g % 4], q, g * 16, g < 4)
      }
      sum4(f, a)
      f.get(d).op('f32x4.splat', 'f32x4.mul').get(acc).op('f32x4.add').set(acc)
      f.bump(p, blockBytes).bump(q, 128)
    })
    laneSum(f, acc)
  }
}

/** Q8_0: f16 d, then 32 int8 q; value = q·d. */
const q8Dot = blockDot(34, (f, p) => {
  const v = f.local('v128')
  return g => {
    if (g % 2 === 0) f.get(p).mem('v128.load8x8_s', 2 + 4 * g).set(v) // 8 values as i16x8
    f.get(v).op(g % 2 === 0 ? 'i32x4.extend_low_i16x8_s' : 'i32x4.extend_high_i16x8_s')
  }
})

/** Q4_0: f16 d, then 16 bytes; byte j holds value j (low nibble) and j + 16 (high); value = (nibble - 8)·d. */
const q4Dot = blockDot(18, (f, p) => {
  const raw = f.local('v128'); const half = f.local('v128'); const wide = f.local('v128')
  const lowMask = f.local('v128'); const eight = f.local('v128')
  f.i32x4(0x0f0f0f0f).set(lowMask).i32x4(0x08080808).set(eight)
  return g => {
    if (g === 0) {
      f.get(p).mem('v128.load', 2).tee(raw).get(lowMask).op('v128.and').get(eight).op('i8x16.sub').set(half)
    } else if (g === 4) {
      f.get(raw).i32(4).op('i8x16.shr_u').get(eight).op('i8x16.sub').set(half)
    }
    if (g % 2 === 0) f.get(half).op(g % 4 === 0 ? 'i16x8.extend_low_i8x16_s' : 'i16x8.extend_high_i8x16_s').set(wide)
    f.get(wide).op(g % 2 === 0 ? 'i32x4.extend_low_i16x8_s' : 'i32x4.extend_high_i16x8_s')
  }
})

/** Each layout's dot product and the code that pushes its row stride in bytes. */
const DOTS: Record<ExactLayout, [DotEmitter, (f: FunctionBuilder) => void]> = {
  F32: [denseDot(4), f => f.get(COLS).i32(2).op('i32.shl')],
  F16: [denseDot(2), f => f.get(COLS).i32(1).op('i32.shl')],
  Q8_0: [q8Dot, f => f.get(COLS).i32(5).op('i32.shr_u').i32(34).op('i32.mul')],
  Q4_0: [q4Dot, f => f.get(COLS).i32(5).op('i32.shr_u').i32(18).op('i32.mul')]
}

/** Rows outer (each row is read once), positions inner. */
function matmulFunction (layout: ExactLayout): FunctionBuilder {
  const f = new FunctionBuilder(['i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32'])
  const [dot, stride] = DOTS[layout]
  const r = f.local('i32'); const t = f.local('i32'); const row = f.local('i32'); const xp = f.local('i32'); const yp = f.local('i32')
  const bytes = f.local('i32')
  stride(f)
  f.set(bytes)
  f.get(R0).set(r)
  f.whileBelow(r, R1, () => {
    f.get(W).get(r).get(bytes).op('i32.mul', 'i32.add').set(row)
    f.get(X).set(xp)
    f.get(Y).get(r).i32(2).op('i32.shl', 'i32.add').set(yp)
    f.i32(0).set(t)
    f.whileBelow(t, N, () => {
      f.get(yp)
      dot(f, row, xp)
      f.mem('f32.store')
      f.get(xp).get(COLS).i32(2).op('i32.shl', 'i32.add').set(xp)
      f.get(yp).get(ROWS).i32(2).op('i32.shl', 'i32.add').set(yp)
      f.bump(t, 1)
    })
    f.bump(r, 1)
  })
  return f
}

/** The kernel module for a memory that is shared between threads or not; memories go up to 4 GiB. */
export function kernelModuleBytes (shared: boolean): Uint8Array<ArrayBuffer> {
  const functions: Record<string, FunctionBuilder> = {}
  for (const layout of Object.keys(DOTS) as ExactLayout[]) functions[KERNEL_EXPORTS[layout]] = matmulFunction(layout)
  functions[Q8_INT_EXPORT] = q8IntMatmulFunction()
  functions[Q8_QUANTIZE_EXPORT] = q8QuantizeFunction()
  return moduleBytes({ shared, initial: 1, maximum: 65536 }, functions)
}
