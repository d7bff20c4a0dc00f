import { FunctionBuilder } from './builder.ts'
import { GROUP_BLOCKS, X_GROUP_BYTES } from './kernel-q8-int.ts'

/** The activation quantizer's export name. */
export const Q8_QUANTIZE_EXPORT = 'quantize_q8_0'

/**
 * `(x, n, groups, out)`: byte offsets of x and of the output, the row count and the groups of
 * 128 values per row; x is `(n, groups · 128)` f32 (rows padded with zeros).
 */
export type Quantizer = (x: number, n: number, groups: number, out: number) => void

const X = 0; const N = 1; const GROUPS = 2; const OUT = 3

/**
 * Quantizes x per block of 32 values into the integer kernel's activation groups
 * (`kernel-q8-int.ts`): d = amax / 127 in f32, q = round(x · (1/d)) with halves away from
 * zero (0 where d = 0), as ggml's reference `quantize_row_q8_0` except that d stays f32. Each
 * row on its own; a zero block (padding) gets d = 0 and zeros. x is overwritten.
 *
 * Rounding is exact: t = trunc(v), and v - t (exact for |v| < 2^23) decides whether to step
 * one away from zero. amax skips NaN the way `a > amax` does (f32x4.pmax keeps its first
 * operand unless the second is greater), so this matches a scalar loop bit for bit.
 *
 * Per group, two passes (loops rather than unrolled code: the whole kernel module must stay
 * under 4 KiB): each block's 32 int16 values are written in order over the start of its own
 * f32 input (already read), then the group's 4 blocks are interleaved pair by pair (pair c of
 * block k at pair slot 4c + k) by 4×4 transposes of i32x4.
 */
export function q8QuantizeFunction (): FunctionBuilder {
  const f = new FunctionBuilder(['i32', 'i32', 'i32', 'i32'])
  const src = f.local('i32'); const end = f.local('i32'); const dst = f.local('i32')
  const p = f.local('i32'); const blocksEnd = f.local('i32'); const dp = f.local('i32')
  const q = f.local('i32'); const w = f.local('i32'); const stop = f.local('i32')
  const a = f.local('v128'); const inv = f.local('v128'); const v = f.local('v128'); const t = f.local('v128'); const lo = f.local('v128')
  const d = f.local('f32')
  const half = f.local('v128'); const signBit = f.local('v128'); const one = f.local('v128')
  const pairs = Array.from({ length: GROUP_BLOCKS }, () => f.local('v128'))
  const tr = Array.from({ length: 4 }, () => f.local('v128'))
  /** Pushes round(x · inv) of the 4 f32 at q + offset, as i32x4. */
  const round4 = (offset: number): void => {
    f.get(q).mem('v128.load', offset).get(inv).op('f32x4.mul').tee(v).op('f32x4.trunc').set(t)
    f.get(t)
    f.get(v).get(signBit).op('v128.and').get(one).op('v128.or') // ±1 with v's sign
    f.get(v).get(t).op('f32x4.sub', 'f32x4.abs').get(half).op('f32x4.ge', 'v128.and')
    f.op('f32x4.add', 'i32x4.trunc_sat_f32x4_s')
  }
  f.i32x4(0x3f000000).set(half).i32x4(0x80000000 | 0).set(signBit).i32x4(0x3f800000).set(one)
  f.get(X).set(src)
  f.get(OUT).set(dst)
  f.get(X).get(N).get(GROUPS).op('i32.mul').i32(9).op('i32.shl', 'i32.add').set(end) // 512 input bytes a group
  f.whileBelow(src, end, () => {
    // pass 1, block by block (p at its 128 input bytes, dp + 256 where its d goes)
    f.get(src).tee(p).i32(512).op('i32.add').set(blocksEnd)
    f.get(dst).set(dp)
    f.whileBelow(p, blocksEnd, () => {
      f.i32x4(0).set(a)
      f.get(p).tee(q).i32(128).op('i32.add').set(stop)
      f.whileBelow(q, stop, () => {
        f.get(a).get(q).mem('v128.load').op('f32x4.abs', 'f32x4.pmax').set(a)
        f.bump(q, 16)
      })
      f.get(a).get(a).get(a).shuffle32([2, 3, 0, 1]).op('f32x4.pmax').set(a)
      f.get(a).get(a).get(a).shuffle32([1, 0, 3, 2]).op('f32x4.pmax').set(a)
      f.get(a).f32x4ExtractLane(0).f32(127).op('f32.div').set(d)
      f.get(dp).get(d).mem('f32.store', 256)
      f.f32(1).get(d).op('f32.div').f32(0).get(d).f32(0).op('f32.ne', 'select', 'f32x4.splat').set(inv)
      // 8 values at a time: read at q, int16 written at w, behind the reads
      f.get(p).tee(q).set(w)
      f.whileBelow(q, stop, () => {
        round4(0)
        f.set(lo)
        f.get(w).get(lo)
        round4(16)
        f.op('i16x8.narrow_i32x4_s').mem('v128.store')
        f.bump(q, 32).bump(w, 16)
      })
      f.bump(p, 128).bump(dp, 4)
    })
    // pass 2: pair vector m of each block (at src + 128k + 16m) into slots 16m..16m+15 (dst + 64m)
    f.get(src).tee(q).i32(64).op('i32.add').set(stop)
    f.get(dst).set(w)
    f.whileBelow(q, stop, () => {
      pairs.forEach((pk, kk) => f.get(q).mem('v128.load', 128 * kk).set(pk))
      f.get(pairs[0]).get(pairs[1]).shuffle32([0, 4, 1, 5]).set(tr[0])
      f.get(pairs[2]).get(pairs[3]).shuffle32([0, 4, 1, 5]).set(tr[1])
      f.get(pairs[0]).get(pairs[1]).shuffle32([2, 6, 3, 7]).set(tr[2])
      f.get(pairs[2]).get(pairs[3]).shuffle32([2, 6, 3, 7]).set(tr[3])
      f.get(w).get(tr[0]).get(tr[1]).shuffle32([0, 1, 4, 5]).mem('v128.store')
      f.get(w).get(tr[0]).get(tr[1]).shuffle32([2, 3, 6, 7]).mem('v128.store', 16)
      f.get(w).get(tr[2]).get(tr[3]).shuffle32([0, 1, 4, 5]).mem('v128.store', 32)
      f.get(w).get(tr[2]).get(tr[3]).shuffle32([2, 3, 6, 7]).mem('v128.store', 48)
      f.bump(q, 16).bump(w, 64)
    })
    f.bump(src, 512).bump(dst, X_GROUP_BYTES)
  })
  return f
}
