import { FunctionBuilder } from './builder.ts'

/**
 * The integer Q8_0 matmul: Q8_0 weights times activations already quantized per 32-value
 * block (`quantizeRows` in `../q8-activations.ts`, `kernel-q8-quantize.ts`). Same signature as the exact kernels,
 * `(w, rows, cols, x, n, y, r0, r1, table)`, but x is `n` rows of `cols / 32` activation
 * blocks of ACT_BLOCK_BYTES each: 32 int16 values (each in [-127, 127]) at bytes 0..63 and
 * their f32 scale at byte 64.
 *
 * Per block: the 32 int8 weights are widened to int16 on load and multiplied with the 32
 * activations by four `i32x4.dot_i16x8_s` (exact integer sums), the i32x4 is converted to
 * f32x4 and scaled by d_w · d_x into one f32x4 accumulator; the lanes are summed at the end
 * as (l0 + l1) + (l2 + l3). The order depends only on `cols`, so batches, single positions
 * and row splits give bit-identical results, as with the exact kernels.
 */
export const ACT_BLOCK_BYTES = 80

/** The kernel's export name. */
export const Q8_INT_EXPORT = 'matmul_q8_0_int'

const W = 0; const ROWS = 1; const COLS = 2; const X = 3; const N = 4; const Y = 5; const R0 = 6; const R1 = 7; const TABLE = 8

/** Rows outer (each weight row is read once for all n positions), positions inner. */
export function q8IntMatmulFunction (): FunctionBuilder {
  const f = new FunctionBuilder(['i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32'])
  const r = f.local('i32'); const t = f.local('i32'); const row = f.local('i32'); const xp = f.local('i32'); const yp = f.local('i32')
  const rowStride = f.local('i32'); const xStride = f.local('i32')
  const p = f.local('i32'); const q = f.local('i32'); const end = f.local('i32')
  const s = f.local('v128'); const acc = f.local('v128')
  // strides: a weight row is cols/32 blocks of 34 bytes, an activation row cols/32 blocks of ACT_BLOCK_BYTES
  f.get(COLS).i32(5).op('i32.shr_u').i32(34).op('i32.mul').set(rowStride)
  f.get(COLS).i32(5).op('i32.shr_u').i32(ACT_BLOCK_BYTES).op('i32.mul').set(xStride)
  f.get(R0).set(r)
  f.whileBelow(r, R1, () => {
    f.get(W).get(r).get(rowStride).op('i32.mul', 'i32.add').set(row)
    f.get(X).set(xp)
    f.get(Y).get(r).i32(2).op('i32.shl', 'i32.add').set(yp)
    f.i32(0).set(t)
    f.whileBelow(t, N, () => {
      f.get(row).set(p).get(xp).set(q)
      f.get(row).get(rowStride).op('i32.add').set(end)
      f.i32x4(0).set(acc)
      f.whileBelow(p, end, () => {
        // s = Σ over 4 groups of 8: w (int8 → int16 on load) · x (int16), pairwise into i32 lanes
        for (let g = 0; g < 4; g++) {
          f.get(p).mem('v128.load8x8_s', 2 + 8 * g).get(q).mem('v128.load', 16 * g).op('i32x4.dot_i16x8_s')
          if (g > 0) f.get(s).op('i32x4.add')
          f.set(s)
        }
        // acc += f32(s) · (d_w · d_x)
        f.get(s).op('f32x4.convert_i32x4_s')
        f.get(TABLE).get(p).mem('i32.load16_u').i32(2).op('i32.shl', 'i32.add').mem('f32.load')
        f.get(q).mem('f32.load', 64).op('f32.mul', 'f32x4.splat', 'f32x4.mul')
        f.get(acc).op('f32x4.add').set(acc)
        f.bump(p, 34).bump(q, ACT_BLOCK_BYTES)
      })
      f.get(yp)
      f.get(acc).f32x4ExtractLane(0).get(acc).f32x4ExtractLane(1).op('f32.add')
      f.get(acc).f32x4ExtractLane(2).get(acc).f32x4ExtractLane(3).op('f32.add', 'f32.add')
      f.mem('f32.store')
      f.get(xp).get(xStride).op('i32.add').set(xp)
      f.get(yp).get(ROWS).i32(2).op('i32.shl', 'i32.add').set(yp)
      f.bump(t, 1)
    })
    f.bump(r, 1)
  })
  return f
}
