import type { Backend, Stage, StageInit } from '../types.ts'
import { CpuStage } from './stage.ts'

/** The CPU backend: plain JavaScript, single-threaded, weights kept in their stored dtype. */
export function cpuBackend (): Backend {
  return {
    name: 'cpu',
    async createStage (init: StageInit): Promise<Stage> {
      return new CpuStage(init)
    }
  }
}
