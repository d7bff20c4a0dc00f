import { describe, expect, it } from 'vitest'
import { f32ToF16, quantizeQ4_0, quantizeQ8_0 } from '@shardmesh/model'
import type { DType, Tensor } from '@shardmesh/model'
import { THREAD_MIN_MACS, wasmArena } from '../src/cpu/wasm/arena.ts'
import type { WasmArena } from '../src/cpu/wasm/arena.ts'
import { cpuMatrix } from '../src/cpu/matrix.ts'
import { matmul } from '../src/cpu/matmul.ts'

function values (n: number, seed: number): Float32Array {
  let s = seed >>> 0
  return Float32Array.from({ length: n }, () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s / 2 ** 32 - 0.5 })
}

function tensorOf (dtype: DType, rows: number, cols: number, v: Float32Array): Tensor {
  const data = dtype === 'F32'
    ? new Uint8Array(v.buffer.slice(0))
    : dtype === 'F16' ? new Uint8Array(Uint16Array.from(v, f32ToF16).buffer) : dtype === 'Q8_0' ? quantizeQ8_0(v) : quantizeQ4_0(v)
  return { name: `w.${dtype}`, dtype, shape: [rows, cols], data }
}

async function untilAllThreads (arena: WasmArena, want: number): Promise<void> {
  const deadline = Date.now() + 20_000
  while (arena.threads < want) {
    if (Date.now() > deadline) throw new Error(`only ${arena.threads} of ${want} threads started`)
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

describe('matmul split across worker threads', () => {
  const rows = 531; const cols = 640
  const dtypes: DType[] = ['F32', 'F16', 'Q8_0', 'Q4_0']

  it('gives the same bits as one thread, for every dtype and batch size', async () => {
    expect(rows * cols).toBeGreaterThanOrEqual(THREAD_MIN_MACS)
    const one = wasmArena()
    const two = wasmArena({ threads: 2 })
    try {
      const pairs = dtypes.map(dtype => {
        const t = tensorOf(dtype, rows, cols, values(rows * cols, dtype.length))
        return { dtype, alone: cpuMatrix(t, one), shared: cpuMatrix(t, two) }
      })
      matmul(pairs[0].shared, values(cols, 1), 1, new Float32Array(rows)) // starts the workers
      await untilAllThreads(two, 2)
      for (const n of [1, 3]) {
        const x = values(n * cols, 7 + n)
        for (const { dtype, alone, shared } of pairs) {
          const want = new Float32Array(n * rows)
          matmul(alone, x, n, want)
          for (let repeat = 0; repeat < 20; repeat++) {
            const got = new Float32Array(n * rows)
            matmul(shared, x, n, got)
            const bad = got.findIndex((v, i) => !Object.is(v, want[i]))
            expect(bad, `${dtype}, n = ${n}, repeat ${repeat}: index ${bad}`).toBe(-1)
          }
        }
      }
    } finally {
      two.close()
    }
  })

  it('keeps computing on the calling thread after close', async () => {
    const arena = wasmArena({ threads: 2 })
    const m = cpuMatrix(tensorOf('Q8_0', rows, cols, values(rows * cols, 3)), arena)
    const x = values(cols, 4)
    const before = new Float32Array(rows)
    matmul(m, x, 1, before)
    await untilAllThreads(arena, 2)
    arena.close()
    expect(arena.threads).toBe(1)
    const after = new Float32Array(rows)
    matmul(m, x, 1, after)
    expect(Array.from(after)).toEqual(Array.from(before))
  })
})
