const f32 = new Float32Array(1)
const u32 = new Uint32Array(f32.buffer)

/** IEEE half (as uint16 bits) to a JS number. */
export function f16ToF32 (h: number): number {
  const sign = (h & 0x8000) !== 0 ? -1 : 1
  const exp = (h >> 10) & 0x1f
  const frac = h & 0x3ff
  if (exp === 0) return sign * frac * 2 ** -24
  if (exp === 31) return frac === 0 ? sign * Infinity : NaN
  return sign * (1 + frac / 1024) * 2 ** (exp - 15)
}

/** A JS number to IEEE half bits, rounding to nearest even. */
export function f32ToF16 (value: number): number {
  f32[0] = value
  const x = u32[0]
  const sign = (x >>> 16) & 0x8000
  const exp = (x >>> 23) & 0xff
  let mant = x & 0x7fffff
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0)
  const e = exp - 127 + 15
  if (e >= 31) return sign | 0x7c00
  if (e <= 0) {
    if (e < -10) return sign
    mant |= 0x800000
    const shift = 14 - e
    let half = mant >>> shift
    const rem = mant & ((1 << shift) - 1)
    const mid = 1 << (shift - 1)
    if (rem > mid || (rem === mid && (half & 1) !== 0)) half++
    return sign | half
  }
  let half = (e << 10) | (mant >>> 13)
  const rem = mant & 0x1fff
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1) !== 0)) half++
  return sign | half
}

let table: Float32Array | undefined

/** All 65536 half values as float32, for fast per-element conversion in kernels. */
export function f16Table (): Float32Array {
  if (table === undefined) {
    table = new Float32Array(65536)
    for (let h = 0; h < 65536; h++) table[h] = f16ToF32(h)
  }
  return table
}

/** bfloat16 bits to float32. */
export function bf16ToF32 (h: number): number {
  u32[0] = h << 16
  return f32[0]
}
