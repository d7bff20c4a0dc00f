import type { ComponentBackend, EncoderStage, EncoderStageInit } from '../components/types.ts'
import type { GpuContext } from './context.ts'
import { WebGpuEncoderStage } from './encoder-stage.ts'

/** The WebGPU backend's stages of models made of parts, on the backend's device. */
export function webgpuComponentStages (context: () => Promise<GpuContext>): Pick<ComponentBackend, 'createEncoderStage'> {
  return {
    async createEncoderStage (init: EncoderStageInit): Promise<EncoderStage> {
      return await WebGpuEncoderStage.create(await context(), init)
    }
  }
}
