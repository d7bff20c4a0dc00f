import type { Backend, Stage, StageInit } from '../types.ts'
import { CpuStage } from './stage.ts'

export interface CpuBackendInit {
  /**
   * Threads that share each large matmul (WebAssembly SIMD kernels on a shared memory; more
   * than one needs SharedArrayBuffer, in browsers a cross-origin isolated page). Results are
   * bit-identical for any count. `availableThreads()` says what pays here.
   * @default 1
   */
  threads?: number
}

/** The CPU backend: WebAssembly SIMD matmuls over weights kept in their stored dtype. */
export function cpuBackend (init: CpuBackendInit = {}): Backend {
  const threads = init.threads ?? 1
  if (!Number.isInteger(threads) || threads < 1) throw new RangeError(`threads must be a whole number >= 1, got ${threads}`)
  return {
    name: 'cpu',
    async createStage (stageInit: StageInit): Promise<Stage> {
      return new CpuStage(stageInit, threads)
    }
  }
}
