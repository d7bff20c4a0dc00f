import { checkComponentConfig, decoderModelConfig } from '@shardmesh/model'
import { checkStageTensors, decoderTensorSource } from '../components/tensors.ts'
import type { ComponentBackend, DecoderStage, DecoderStageInit, EncoderStage, EncoderStageInit } from '../components/types.ts'
import { StageConfigError } from '../errors.ts'
import { stageShape } from '../stage-shape.ts'
import type { GpuContext } from './context.ts'
import { WebGpuEncoderStage } from './encoder-stage.ts'
import { WebGpuStage } from './stage.ts'

/** The WebGPU backend's stages of models made of parts, on the backend's device. */
export function webgpuComponentStages (context: () => Promise<GpuContext>): ComponentBackend {
  return {
    async createEncoderStage (init: EncoderStageInit): Promise<EncoderStage> {
      return await WebGpuEncoderStage.create(await context(), init)
    },
    /**
     * A decoder stage is the Llama stage (`decoderModelConfig`, the tensors renamed by
     * `decoderTensorSource`) with cross-attention over the encoder's `dim`-wide memory; its
     * tensors are checked under their component names first (before a device is asked
     * for), so errors name those.
     */
    async createDecoderStage (init: DecoderStageInit): Promise<DecoderStage> {
      const model = checkComponentConfig(init.model)
      if (model.kind !== 'encoder_decoder') throw new StageConfigError(`${model.name} is a ${model.kind} model; only an encoder_decoder model has a decoder`)
      const config = decoderModelConfig(model)
      const shape = stageShape({ config, layers: init.layers, units: init.units })
      checkStageTensors(model, 'decoder', shape, init.tensors)
      // with crossAttention set, its sessions have setMemory and memoryLength
      return await WebGpuStage.create(await context(), {
        config,
        layers: init.layers,
        units: init.units,
        tensors: decoderTensorSource(init.tensors),
        activations: init.activations,
        crossAttention: { dim: model.encoder.dim }
      }) as unknown as DecoderStage
    }
  }
}
