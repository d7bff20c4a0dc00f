import type { ComponentBackend } from '../components/types.ts'
import type { Backend, Stage, StageInit } from '../types.ts'
import { cpuComponentStages } from './components.ts'
import type { CpuQuant } from './matrix.ts'
import { CpuStage } from './stage.ts'

export interface CpuBackendInit {
  /**
   * Threads that share each large matmul (WebAssembly SIMD kernels on a shared memory; more
   * than one needs SharedArrayBuffer, in browsers a cross-origin isolated page). Results are
   * bit-identical for any count. `availableThreads()` says what pays here.
   * @default 1
   */
  threads?: number
  /**
   * An approximate, faster matmul path, off by default. `'q8_0'`: F32/F16/BF16 weight
   * matrices are quantized to Q8_0 on load (Q8_0 ones kept as stored, Q4_0 ones stay on the
   * exact kernel, rows that are not whole blocks of 32 keep their dtype), and every Q8_0
   * matmul quantizes its activations to int8 per block of 32 and sums integer dot products.
   * Logits then differ from the exact path (see the README's numerics note); prefill and
   * decode, any thread count and any batch still agree bit for bit with each other.
   * @default undefined (exact: activations stay f32, weights as stored)
   */
  quant?: CpuQuant
}

/** The CPU backend: WebAssembly SIMD matmuls over weights kept in their stored dtype. */
export function cpuBackend (init: CpuBackendInit = {}): Backend & ComponentBackend {
  const threads = init.threads ?? 1
  if (!Number.isInteger(threads) || threads < 1) throw new RangeError(`threads must be a whole number >= 1, got ${threads}`)
  const quant = init.quant
  if (quant !== undefined && quant !== 'q8_0') throw new RangeError(`quant must be 'q8_0' or left out, got ${String(quant)}`)
  return {
    name: 'cpu',
    async createStage (stageInit: StageInit): Promise<Stage> {
      return new CpuStage(stageInit, threads, quant)
    },
    ...cpuComponentStages(threads, quant)
  }
}
