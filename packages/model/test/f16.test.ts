import { describe, expect, it } from 'vitest'
import { f16ToF32, f32ToF16, bf16ToF32 } from '../src/f16.ts'

describe('f16', () => {
  it('round-trips every finite half value', () => {
    for (let h = 0; h < 0x10000; h++) {
      const exp = (h >> 10) & 0x1f
      if (exp === 31) continue
      const back = f32ToF16(f16ToF32(h))
      // -0 and +0 both map to their own bit pattern
      expect(back, `half 0x${h.toString(16)}`).toBe(h)
    }
  })

  it('rounds to nearest even and saturates to infinity', () => {
    expect(f16ToF32(f32ToF16(1 + 2 ** -11))).toBe(1) // tie → even (1.0)
    expect(f16ToF32(f32ToF16(1 + 3 * 2 ** -11))).toBe(1 + 2 ** -9) // tie → even (upper)
    expect(f16ToF32(f32ToF16(1e6))).toBe(Infinity)
    expect(f16ToF32(f32ToF16(2 ** -24))).toBe(2 ** -24)
  })

  it('widens bfloat16', () => {
    expect(bf16ToF32(0x3f80)).toBe(1)
    expect(bf16ToF32(0xc040)).toBe(-3)
  })
})
