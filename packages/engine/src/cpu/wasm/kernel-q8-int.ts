import { FunctionBuilder } from './builder.ts'

/**
 * The integer Q8_0 matmul: Q8_0 weights, repacked on load, times activations quantized per
 * 32-value block (`quantizeRows` in `../q8-activations.ts`, `kernel-q8-quantize.ts`). Same
 * signature as the exact kernels, `(w, rows, cols, x, n, y, r0, r1, table)` (`table` unused).
 *
 * Both sides come in groups of GROUP_BLOCKS = 4 blocks (128 values; a row's last group is
 * padded with zero blocks of scale 0). In a group the values of the 4 blocks are interleaved
 * two by two: value j of block k sits at position 8·(j >> 1) + 2k + (j & 1) (`groupPosition`),
 * so that one `i32x4.dot_i16x8_s` over 8 positions puts block k's two products in lane k.
 * - weights (`W_GROUP_BYTES` per group): the 128 int8 values, then the 4 block scales as f32
 *   (Q8_0's f16 d, widened exactly);
 * - activations (`X_GROUP_BYTES` per group): the 128 values as int16 (each in [-127, 127]),
 *   then the 4 block scales as f32.
 *
 * Per group: 16 widening loads (int8 → int16) and `i32x4.dot_i16x8_s` with the activations
 * sum each block's 32 products exactly into its lane (|sum| ≤ 32·128·127 < 2^24, so its f32 is
 * exact too), and the f32x4 accumulator gets f32(sums) · (d_w · d_x), lane k collecting blocks
 * k, k + 4, …; the lanes are summed at the end as (l0 + l1) + (l2 + l3). The order depends only
 * on `cols`, so batches, single positions and row splits give bit-identical results, as with
 * the exact kernels. The 16 products of a group run in an inner loop of 4 steps: written out in
 * one step, V8 issues all 32 loads before any product and spills registers (measured slower).
 */
export const GROUP_BLOCKS = 4
/** Bytes of one weight group: 128 int8 values and 4 f32 scales. */
export const W_GROUP_BYTES = 144
/** Bytes of one activation group: 128 int16 values and 4 f32 scales. */
export const X_GROUP_BYTES = 272

/** Groups of a row of `cols` values (a multiple of 32). */
export const groupsOf = (cols: number): number => Math.ceil(cols / (32 * GROUP_BLOCKS))

/** Position, among a group's 128 values, of value j (0..31) of the group's block k (0..3). */
export const groupPosition = (k: number, j: number): number => 8 * (j >> 1) + 2 * k + (j & 1)

/** The kernel's export name. */
export const Q8_INT_EXPORT = 'matmul_q8_0_int'

const W = 0; const ROWS = 1; const COLS = 2; const X = 3; const N = 4; const Y = 5; const R0 = 6; const R1 = 7

/** Positions (8 values each) per step of the inner loop. */
const CHUNKS_PER_STEP = 4

/** Rows outer (each weight row is read once for all n positions), positions inner. */
export function q8IntMatmulFunction (): FunctionBuilder {
  const f = new FunctionBuilder(['i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32'])
  const r = f.local('i32'); const t = f.local('i32'); const row = f.local('i32'); const xp = f.local('i32'); const yp = f.local('i32')
  const rowStride = f.local('i32'); const xStride = f.local('i32')
  const p = f.local('i32'); const q = f.local('i32'); const end = f.local('i32'); const valuesEnd = f.local('i32')
  const s = f.local('v128'); const acc = f.local('v128')
  // groups = ceil(cols / 128); strides in bytes
  f.get(COLS).i32(127).op('i32.add').i32(7).op('i32.shr_u').tee(rowStride).i32(X_GROUP_BYTES).op('i32.mul').set(xStride)
  f.get(rowStride).i32(W_GROUP_BYTES).op('i32.mul').set(rowStride)
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
        // s: lane k = Σ over block k's 32 values of w (int8 → int16 on load) · x (int16)
        f.i32x4(0).set(s)
        f.get(p).i32(128).op('i32.add').set(valuesEnd)
        f.whileBelow(p, valuesEnd, () => {
          for (let c = 0; c < CHUNKS_PER_STEP; c++) {
            f.get(p).mem('v128.load8x8_s', 8 * c).get(q).mem('v128.load', 16 * c).op('i32x4.dot_i16x8_s').get(s).op('i32x4.add').set(s)
          }
          f.bump(p, 8 * CHUNKS_PER_STEP).bump(q, 16 * CHUNKS_PER_STEP)
        })
        // acc += f32(s) · (d_w · d_x), p and q now at the group's scales
        f.get(s).op('f32x4.convert_i32x4_s')
        f.get(p).mem('v128.load').get(q).mem('v128.load').op('f32x4.mul', 'f32x4.mul')
        f.get(acc).op('f32x4.add').set(acc)
        f.bump(p, 16).bump(q, 16)
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
