import { FunctionBuilder } from './builder.ts'
import { ACT_BLOCK_BYTES } from './kernel-q8-int.ts'

/** The activation quantizer's export name. */
export const Q8_QUANTIZE_EXPORT = 'quantize_q8_0'

/** `(x, n, cols, out)`: byte offsets of x `(n, cols)` f32 and of the output, n and cols (a multiple of 32). */
export type Quantizer = (x: number, n: number, cols: number, out: number) => void

const X = 0; const N = 1; const COLS = 2; const OUT = 3

/**
 * Quantizes x `(n, cols)` per block of 32 values into the integer kernel's activation blocks
 * (`kernel-q8-int.ts`: 32 int16 values, then the f32 scale): d = amax / 127 in f32,
 * q = round(x · (1/d)) with halves away from zero (0 where d = 0), as ggml's reference
 * `quantize_row_q8_0` except that d stays f32. Each row on its own.
 *
 * Rounding is exact: t = trunc(v), and v - t (exact for |v| < 2^23) decides whether to step
 * one away from zero. amax skips NaN the way `a > amax` does (f32x4.pmax keeps its first
 * operand unless the second is greater), so this matches a scalar loop bit for bit.
 */
export function q8QuantizeFunction (): FunctionBuilder {
  const f = new FunctionBuilder(['i32', 'i32', 'i32', 'i32'])
  const src = f.local('i32'); const end = f.local('i32'); const dst = f.local('i32')
  const a = f.local('v128'); const inv = f.local('v128'); const v = f.local('v128'); const t = f.local('v128'); const q = f.local('v128')
  const d = f.local('f32')
  const half = f.local('v128'); const signBit = f.local('v128'); const one = f.local('v128')
  f.i32x4(0x3f000000).set(half).i32x4(0x80000000 | 0).set(signBit).i32x4(0x3f800000).set(one)
  f.get(X).set(src)
  f.get(OUT).set(dst)
  f.get(X).get(N).get(COLS).op('i32.mul').i32(2).op('i32.shl', 'i32.add').set(end)
  f.whileBelow(src, end, () => {
    // a = per-lane max |x| over the block's 8 vectors, then across lanes
    f.i32x4(0).set(a)
    for (let k = 0; k < 8; k++) f.get(a).get(src).mem('v128.load', 16 * k).op('f32x4.abs', 'f32x4.pmax').set(a)
    f.get(a).get(a).get(a).shuffle32([2, 3, 0, 1]).op('f32x4.pmax').set(a)
    f.get(a).get(a).get(a).shuffle32([1, 0, 3, 2]).op('f32x4.pmax').set(a)
    f.get(a).f32x4ExtractLane(0).f32(127).op('f32.div').set(d)
    f.f32(1).get(d).op('f32.div').f32(0).get(d).f32(0).op('f32.ne', 'select', 'f32x4.splat').set(inv)
    // four i32x4 of q, narrowed to int16 two by two
    for (let k = 0; k < 8; k++) {
      f.get(src).mem('v128.load', 16 * k).get(inv).op('f32x4.mul').tee(v).op('f32x4.trunc').set(t)
      f.get(t)
      f.get(v).get(signBit).op('v128.and').get(one).op('v128.or') // ±1 with v's sign
      f.get(v).get(t).op('f32x4.sub', 'f32x4.abs').get(half).op('f32x4.ge', 'v128.and')
      f.op('f32x4.add', 'i32x4.trunc_sat_f32x4_s')
      if (k % 2 === 0) {
        f.set(q)
      } else {
        f.set(v).get(dst).get(q).get(v).op('i16x8.narrow_i32x4_s').mem('v128.store', 8 * (k - 1))
      }
    }
    f.get(dst).get(d).mem('f32.store', 64)
    f.bump(src, 128).bump(dst, ACT_BLOCK_BYTES)
  })
  return f
}
