import { decoderStageInit } from '../components/stages.ts'
import type { ComponentBackend, DecoderStage, DecoderStageInit, EncoderStage, EncoderStageInit } from '../components/types.ts'
import type { GpuContext } from './context.ts'
import { WebGpuEncoderStage } from './encoder-stage.ts'
import { WebGpuStage } from './stage.ts'

/** The WebGPU backend's stages of models made of parts, on the backend's device. */
export function webgpuComponentStages (context: () => Promise<GpuContext>): ComponentBackend {
  return {
    async createEncoderStage (init: EncoderStageInit): Promise<EncoderStage> {
      return await WebGpuEncoderStage.create(await context(), init)
    },
    async createDecoderStage (init: DecoderStageInit): Promise<DecoderStage> {
      // the init is checked before a device is asked for, so errors name the component's tensors
      const checked = decoderStageInit(init)
      return await WebGpuStage.create(await context(), checked) as unknown as DecoderStage
    }
  }
}
