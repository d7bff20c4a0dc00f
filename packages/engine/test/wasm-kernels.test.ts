import { describe, expect, it } from 'vitest'
import { f16ToF32 } from '@shardmesh/model'
import type { DType, Tensor } from '@shardmesh/model'
import { sleb, uleb } from '../src/cpu/wasm/builder.ts'
import { kernelModuleBytes } from '../src/cpu/wasm/kernels.ts'
import { wasmArena } from '../src/cpu/wasm/arena.ts'
import { cpuMatrix, readRow } from '../src/cpu/matrix.ts'
import { matmul } from '../src/cpu/matmul.ts'

describe('wasm binary builder', () => {
  it('writes LEB128 like the spec examples', () => {
    expect(uleb(0)).toEqual([0])
    expect(uleb(127)).toEqual([0x7f])
    expect(uleb(128)).toEqual([0x80, 0x01])
    expect(uleb(624485)).toEqual([0xe5, 0x8e, 0x26])
    expect(uleb(0xffffffff)).toEqual([0xff, 0xff, 0xff, 0xff, 0x0f])
    expect(sleb(63)).toEqual([0x3f])
    expect(sleb(64)).toEqual([0xc0, 0x00])
    expect(sleb(-1)).toEqual([0x7f])
    expect(sleb(-64)).toEqual([0x40])
    expect(sleb(-65)).toEqual([0xbf, 0x7f])
    expect(sleb(-123456)).toEqual([0xc0, 0xbb, 0x78])
    expect(sleb(-0x80000000)).toEqual([0x80, 0x80, 0x80, 0x80, 0x78])
  })

  it('emits a valid kernel module small enough to compile synchronously on a browser main thread', () => {
    for (const shared of [false, true]) {
      const bytes = kernelModuleBytes(shared)
      expect(WebAssembly.validate(bytes), `shared: ${shared}`).toBe(true)
      expect(bytes.byteLength).toBeLessThan(4096) // Chrome refuses larger synchronous compiles there
    }
  })
})

function halfTensor (rows: number, cols: number, bits: Uint16Array): Tensor {
  return { name: 'w.F16', dtype: 'F16', shape: [rows, cols], data: new Uint8Array(bits.buffer) }
}

describe('wasm kernels', () => {
  it('converts every finite f16 weight exactly, subnormals included', () => {
    const finite = Array.from({ length: 65536 }, (_, h) => h).filter(h => (h & 0x7c00) !== 0x7c00)
    const bits = new Uint16Array(finite.length * 4)
    finite.forEach((h, r) => { bits[4 * r] = h })
    const y = new Float32Array(finite.length)
    matmul(cpuMatrix(halfTensor(finite.length, 4, bits), wasmArena()), Float32Array.of(1, 0, 0, 0), 1, y)
    const bad = finite.findIndex((h, r) => y[r] !== f16ToF32(h))
    expect(bad < 0 ? undefined : `f16 0x${finite[bad].toString(16)}: got ${y[bad]}, want ${f16ToF32(finite[bad])}`).toBeUndefined()
  })

  it('rejects F16 weights that hold Inf or NaN', () => {
    for (const h of [0x7c00, 0xfc00, 0x7e00]) {
      const bits = new Uint16Array(32).fill(0x3c00)
      bits[17] = h
      expect(() => cpuMatrix(halfTensor(2, 16, bits), wasmArena())).toThrow(expect.objectContaining({ name: 'CorruptCheckpointError' }))
    }
  })

  it('widens BF16 to F32 once at load', () => {
    const values = Float32Array.of(1.5, -2.25, 3e-3, 7, 0.1, -0.7, 12, 1e-20, 4, 5, 6)
    const bits = Uint16Array.from(new Uint32Array(values.buffer), u => u >>> 16)
    const t: Tensor = { name: 'w.BF16', dtype: 'BF16', shape: [1, 11], data: new Uint8Array(bits.buffer) }
    const m = cpuMatrix(t, wasmArena())
    const wide = Float32Array.from(bits, b => new Float32Array(Uint32Array.of(b << 16).buffer)[0])
    const row = new Float32Array(11)
    readRow(m, 0, row)
    expect(Array.from(row)).toEqual(Array.from(wide))
    const x = Float32Array.from({ length: 11 }, (_, i) => i - 5)
    const y = new Float32Array(1)
    matmul(m, x, 1, y)
    const want = wide.reduce((s, w, i) => s + w * x[i], 0)
    expect(Math.abs(y[0] - want)).toBeLessThan(1e-5 * (1 + Math.abs(want)))
  })

  it('keeps matrices readable when later loads grow the memory', () => {
    const arena = wasmArena()
    const first = cpuMatrix({ name: 'a', dtype: 'F32', shape: [2, 3], data: new Uint8Array(Float32Array.of(1, 2, 3, 4, 5, 6).buffer) }, arena)
    cpuMatrix({ name: 'big', dtype: 'F32', shape: [1024, 1024], data: new Uint8Array(4 << 20) }, arena)
    const y = new Float32Array(2)
    matmul(first, Float32Array.of(1, 1, 1), 1, y)
    expect(Array.from(y)).toEqual([6, 15])
  })

  it('refuses a tensor whose bytes do not match its shape', () => {
    const t: Tensor = { name: 'short', dtype: 'Q8_0' as DType, shape: [2, 32], data: new Uint8Array(60) }
    expect(() => cpuMatrix(t, wasmArena())).toThrow(expect.objectContaining({ name: 'CorruptCheckpointError' }))
  })
})
