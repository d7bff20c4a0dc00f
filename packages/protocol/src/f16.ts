/**
 * IEEE 754 half precision for F16 activation payloads. The wire format owns its encoding, so
 * the protocol needs no other package (checkpoints have their own reader in @shardmesh/model).
 */

const f32 = new Float32Array(1)
const bits = new Uint32Array(f32.buffer)

/** `value` as half-precision bits, rounded to nearest, ties to even; overflow gives ±∞, NaN stays NaN. */
export function toHalf (value: number): number {
  f32[0] = value
  const x = bits[0]
  const sign = (x >>> 16) & 0x8000
  const exponent = (x >>> 23) & 0xff
  const mantissa = x & 0x7fffff
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa === 0 ? 0 : 0x200)
  const e = exponent - 112 // rebias 127 → 15
  if (e >= 31) return sign | 0x7c00
  if (e > 0) return sign | roundShift((e << 23 | mantissa) >>> 0, 13)
  if (e < -10) return sign // below half the smallest subnormal
  // subnormal: the implicit leading 1 becomes explicit, shifted into 10 bits
  return sign | roundShift(mantissa | 0x800000, 14 - e)
}

/** `x >> shift`, rounded to nearest, ties to even (a carry into the exponent is the right answer). */
function roundShift (x: number, shift: number): number {
  const kept = x >>> shift
  const rest = x & ((1 << shift) - 1)
  const half = 1 << (shift - 1)
  return rest > half || (rest === half && (kept & 1) === 1) ? kept + 1 : kept
}

let table: Float32Array | undefined

/** Every half-precision bit pattern decoded to float32 (index = bits). */
export function halfTable (): Float32Array {
  if (table === undefined) {
    table = new Float32Array(65536)
    for (let h = 0; h < 65536; h++) {
      const sign = (h & 0x8000) !== 0 ? -1 : 1
      const exponent = (h >>> 10) & 0x1f
      const fraction = h & 0x3ff
      table[h] = exponent === 0
        ? sign * fraction * 2 ** -24
        : exponent === 31
          ? (fraction === 0 ? sign * Infinity : NaN)
          : sign * (1024 + fraction) * 2 ** (exponent - 25)
    }
  }
  return table
}
