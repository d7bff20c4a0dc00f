import { describe, expect, it } from 'vitest'
import { halfTable, toHalf } from '../src/f16.ts'

describe('half precision (F16 payloads)', () => {
  it('decodes every bit pattern and encodes every finite one back to the same bits', () => {
    const table = halfTable()
    for (let h = 0; h < 65536; h++) {
      const v = table[h]
      if (Number.isNaN(v)) {
        expect((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0, `bits ${h.toString(16)}`).toBe(true)
        expect(Number.isNaN(table[toHalf(v)])).toBe(true)
      } else {
        expect(toHalf(v), `bits ${h.toString(16)} = ${v}`).toBe(h)
      }
    }
    expect([table[0x3c00], table[0xc000], table[0x7bff], table[0x0001], table[0x7c00], table[0xfc00]]).toEqual([1, -2, 65504, 2 ** -24, Infinity, -Infinity])
    expect(Object.is(table[0x8000], -0)).toBe(true)
  })

  it('rounds to nearest, ties to even, in the normal and subnormal ranges', () => {
    const ulp = 2 ** -10 // spacing of halves in [1, 2)
    expect(toHalf(1 + ulp / 2)).toBe(0x3c00) // tie: down to even 1.0
    expect(toHalf(1 + 1.5 * ulp)).toBe(0x3c02) // tie: up to even
    expect(toHalf(1 + ulp * 0.51)).toBe(0x3c01)
    expect(toHalf(2 ** -25)).toBe(0) // half the smallest subnormal: tie to 0
    expect(toHalf(2 ** -25 * 1.01)).toBe(0x0001)
    expect(toHalf(3 * 2 ** -25)).toBe(0x0002) // 1.5 subnormal ulps: tie to even
    expect(toHalf(65520)).toBe(0x7c00) // past the largest half: ∞
    expect(toHalf(65519)).toBe(0x7bff)
    expect(toHalf(-1e-30)).toBe(0x8000)
  })
})
