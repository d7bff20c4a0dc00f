import { describe, expect, it } from 'vitest'
import { f32ToF16 } from '../src/f16.ts'
import {
  bytesPerRow, dequantizeQ4_0, dequantizeQ8_0, quantizeQ4_0, quantizeQ8_0, tensorByteLength, toFloat32
} from '../src/quant.ts'
import type { Tensor } from '../src/types.ts'

/** Deterministic values in [-scale, scale) (xorshift32). */
function seeded (n: number, seed: number, scale = 1): Float32Array {
  const out = new Float32Array(n)
  let s = seed >>> 0
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0
    s ^= s >>> 17
    s ^= s << 5; s >>>= 0
    out[i] = (s / 2 ** 32 * 2 - 1) * scale
  }
  return out
}

function blockAmax (x: Float32Array, b: number): number {
  let m = 0
  for (let j = 0; j < 32; j++) m = Math.max(m, Math.abs(x[b * 32 + j]))
  return m
}

describe('Q8_0', () => {
  it('encodes a known block: d = amax/127, q rounds halves away from zero', () => {
    const x = new Float32Array(32)
    x.set([127, -127, 0.5, -0.5, 1.5, 2.4, -2.6, 3])
    const q = quantizeQ8_0(x)
    expect(q.length).toBe(34)
    expect(q[0] | (q[1] << 8)).toBe(0x3c00) // d = 1.0 as f16
    expect(Array.from(new Int8Array(q.buffer, 2, 8))).toEqual([127, -127, 1, -1, 2, 2, -3, 3])
    expect(Array.from(q.subarray(10))).toEqual(new Array(24).fill(0))
    expect(Array.from(dequantizeQ8_0(q, 32).subarray(0, 8))).toEqual([127, -127, 1, -1, 2, 2, -3, 3])
  })

  it('encodes an all-zero block as d = 0, q = 0', () => {
    expect(Array.from(quantizeQ8_0(new Float32Array(32)))).toEqual(new Array(34).fill(0))
  })

  it('round-trips within (0.5 + f16 error) * d per block', () => {
    const x = seeded(32 * 64, 7, 3)
    const y = dequantizeQ8_0(quantizeQ8_0(x), x.length)
    for (let b = 0; b < 64; b++) {
      const bound = blockAmax(x, b) / 127 * 0.57
      for (let j = 0; j < 32; j++) {
        const i = b * 32 + j
        expect(Math.abs(y[i] - x[i]), `element ${i}`).toBeLessThanOrEqual(bound)
      }
    }
  })

  it('rejects sizes that are not whole blocks', () => {
    expect(() => quantizeQ8_0(new Float32Array(33))).toThrow(expect.objectContaining({ name: 'CorruptCheckpointError' }))
    expect(() => dequantizeQ8_0(new Uint8Array(68), 48)).toThrow(expect.objectContaining({ name: 'CorruptCheckpointError' }))
    expect(() => dequantizeQ8_0(new Uint8Array(33), 32)).toThrow(/need 34 bytes, got 33/)
  })
})

describe('Q4_0', () => {
  it('encodes a known block: d = signed max / -8, element j low nibble, j+16 high nibble', () => {
    const x = new Float32Array(32)
    x.set([-8, 7, 7.6, 0, 0.4, 0.5, -0.5, 3])
    x[16] = 1
    x[17] = -1
    const q = quantizeQ4_0(x)
    expect(q.length).toBe(18)
    expect(q[0] | (q[1] << 8)).toBe(0x3c00) // d = -8 / -8 = 1
    // q = min(15, trunc(x + 8.5)); high nibbles from elements 16.. (which are 8 unless set)
    expect(Array.from(q.subarray(2, 10))).toEqual([0 | (9 << 4), 15 | (7 << 4), 15 | (8 << 4), 8 | (8 << 4), 8 | (8 << 4), 9 | (8 << 4), 8 | (8 << 4), 11 | (8 << 4)])
    const y = dequantizeQ4_0(q, 32)
    expect(Array.from(y.subarray(0, 8))).toEqual([-8, 7, 7, 0, 0, 1, 0, 3])
    expect([y[16], y[17], y[18]]).toEqual([1, -1, 0])
  })

  it('keeps the sign of the largest value in d', () => {
    const x = new Float32Array(32)
    x[0] = 8
    x[1] = -8
    const q = quantizeQ4_0(x)
    expect(q[0] | (q[1] << 8)).toBe(f32ToF16(-1))
    const y = dequantizeQ4_0(q, 32)
    expect(y[0]).toBe(8) // nibble 0 → (0 - 8) * -1
    expect(y[1]).toBe(-7) // x*id + 8.5 = 16.5 → clamped to 15 → (15 - 8) * -1
  })

  it('round-trips within |d| per block (the clamp at 15 costs one step)', () => {
    const x = seeded(32 * 64, 11, 2)
    const y = dequantizeQ4_0(quantizeQ4_0(x), x.length)
    for (let b = 0; b < 64; b++) {
      const bound = blockAmax(x, b) / 8 * 1.01
      for (let j = 0; j < 32; j++) {
        const i = b * 32 + j
        expect(Math.abs(y[i] - x[i]), `element ${i}`).toBeLessThanOrEqual(bound)
      }
    }
  })

  it('rejects sizes that are not whole blocks', () => {
    expect(() => quantizeQ4_0(new Float32Array(20))).toThrow(/not a multiple of the block size 32/)
    expect(() => dequantizeQ4_0(new Uint8Array(17), 32)).toThrow(expect.objectContaining({ name: 'CorruptCheckpointError' }))
  })
})

describe('sizes', () => {
  it('gives bytes per row for every dtype', () => {
    expect(bytesPerRow('F32', 64)).toBe(256)
    expect(bytesPerRow('F16', 64)).toBe(128)
    expect(bytesPerRow('BF16', 64)).toBe(128)
    expect(bytesPerRow('Q8_0', 64)).toBe(68)
    expect(bytesPerRow('Q4_0', 64)).toBe(36)
    expect(bytesPerRow('F32', 172)).toBe(688)
    expect(tensorByteLength('Q8_0', [172, 64])).toBe(172 * 68)
    expect(tensorByteLength('F16', [5, 3, 7])).toBe(210)
    expect(tensorByteLength('F32', [64])).toBe(256)
  })

  it('rejects quantized rows that are not whole blocks, naming the tensor', () => {
    expect(() => bytesPerRow('Q4_0', 172, 'layers.0.w2')).toThrow(/layers\.0\.w2: Q4_0 rows need a multiple of 32 columns, got 172/)
    expect(() => tensorByteLength('Q8_0', [64, 172])).toThrow(expect.objectContaining({ name: 'CorruptCheckpointError' }))
    expect(() => tensorByteLength('F32', [2.5, 4])).toThrow(expect.objectContaining({ name: 'CorruptCheckpointError' }))
  })
})

describe('toFloat32', () => {
  const values = [1, -2, 0.5, 3.25]
  const tensor = (dtype: Tensor['dtype'], data: Uint8Array, shape = [2, 2]): Tensor => ({ name: 't', dtype, shape, data })

  it('copies F32 from an unaligned view', () => {
    const buf = new Uint8Array(17)
    buf.set(new Uint8Array(new Float32Array(values).buffer), 1)
    expect(Array.from(toFloat32(tensor('F32', buf.subarray(1))))).toEqual(values)
  })

  it('widens F16 and BF16', () => {
    const f16 = new Uint16Array(values.map(f32ToF16))
    expect(Array.from(toFloat32(tensor('F16', new Uint8Array(f16.buffer))))).toEqual(values)
    const bf16 = new Uint16Array(new Uint32Array(new Float32Array(values).buffer).map((u) => u >>> 16))
    expect(Array.from(toFloat32(tensor('BF16', new Uint8Array(bf16.buffer))))).toEqual(values)
  })

  it('dequantizes Q8_0 and Q4_0 row by row', () => {
    const x = seeded(64 * 2, 3)
    expect(toFloat32(tensor('Q8_0', quantizeQ8_0(x), [2, 64]))).toEqual(dequantizeQ8_0(quantizeQ8_0(x), 128))
    expect(toFloat32(tensor('Q4_0', quantizeQ4_0(x), [2, 64]))).toEqual(dequantizeQ4_0(quantizeQ4_0(x), 128))
  })

  it('rejects data whose length does not match the shape', () => {
    expect(() => toFloat32(tensor('F32', new Uint8Array(12)))).toThrow(/t: F32 \[2, 2\] needs 16 bytes, has 12/)
  })
})
