import { f32ToF16, quantizeQ4_0, quantizeQ8_0 } from '@shardmesh/model'
import type { DType, Tensor } from '@shardmesh/model'

/** Seeded uniform integers and normal floats (a 32-bit LCG). */
export function rng (seed: number): { int: (lo: number, hi: number) => number, normal: (n: number) => Float32Array } {
  let s = seed >>> 0
  const next = (): number => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s / 2 ** 32 }
  return {
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    normal: n => {
      const out = new Float32Array(n)
      for (let i = 0; i < n; i++) out[i] = Math.sqrt(-2 * Math.log(next() + 1e-12)) * Math.cos(2 * Math.PI * next())
      return out
    }
  }
}

/** A `(rows, cols)` weight tensor of `values` stored as `dtype`. */
export function tensorOf (dtype: DType, rows: number, cols: number, values: Float32Array): Tensor {
  let data: Uint8Array
  switch (dtype) {
    case 'F32': data = new Uint8Array(values.buffer.slice(0)); break
    case 'F16': data = new Uint8Array(Uint16Array.from(values, v => f32ToF16(v)).buffer); break
    case 'BF16': data = new Uint8Array(Uint16Array.from(new Uint32Array(values.buffer.slice(0)), u => u >>> 16).buffer); break
    case 'Q8_0': data = quantizeQ8_0(values); break
    case 'Q4_0': data = quantizeQ4_0(values); break
  }
  return { name: `w.${dtype}.${rows}x${cols}`, dtype, shape: [rows, cols], data }
}
