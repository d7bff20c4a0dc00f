import { decoderStageInit } from '../components/stages.ts'
import type { ComponentBackend, DecoderStage, DecoderStageInit, EncoderStage, EncoderStageInit } from '../components/types.ts'
import { CpuEncoderStage } from './encoder-stage.ts'
import type { CpuQuant } from './matrix.ts'
import { CpuStage } from './stage.ts'

/** The CPU backend's stages of models made of parts, with the backend's threads and quantization. */
export function cpuComponentStages (threads: number, quant?: CpuQuant): ComponentBackend {
  return {
    async createEncoderStage (init: EncoderStageInit): Promise<EncoderStage> {
      return new CpuEncoderStage(init, threads, quant)
    },
    async createDecoderStage (init: DecoderStageInit): Promise<DecoderStage> {
      return new CpuStage(decoderStageInit(init), threads, quant) as unknown as DecoderStage
    }
  }
}
