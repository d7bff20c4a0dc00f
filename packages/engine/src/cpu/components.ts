import { checkComponentConfig, decoderModelConfig } from '@shardmesh/model'
import { checkStageTensors, decoderTensorSource } from '../components/tensors.ts'
import type { ComponentBackend, DecoderStage, DecoderStageInit, EncoderStage, EncoderStageInit } from '../components/types.ts'
import { StageConfigError } from '../errors.ts'
import { stageShape } from '../stage-shape.ts'
import { CpuEncoderStage } from './encoder-stage.ts'
import type { CpuQuant } from './matrix.ts'
import { CpuStage } from './stage.ts'

/** The CPU backend's stages of models made of parts, with the backend's threads and quantization. */
export function cpuComponentStages (threads: number, quant?: CpuQuant): ComponentBackend {
  return {
    async createEncoderStage (init: EncoderStageInit): Promise<EncoderStage> {
      return new CpuEncoderStage(init, threads, quant)
    },
    /**
     * A decoder stage is the Llama stage (`decoderModelConfig`, the tensors renamed by
     * `decoderTensorSource`) with cross-attention over the encoder's `dim`-wide memory; its
     * tensors are checked under their component names first, so errors name those.
     */
    async createDecoderStage (init: DecoderStageInit): Promise<DecoderStage> {
      const model = checkComponentConfig(init.model)
      if (model.kind !== 'encoder_decoder') throw new StageConfigError(`${model.name} is a ${model.kind} model; only an encoder_decoder model has a decoder`)
      const config = decoderModelConfig(model)
      const shape = stageShape({ config, layers: init.layers, units: init.units })
      checkStageTensors(model, 'decoder', shape, init.tensors)
      // with crossAttention set, its sessions have setMemory and memoryLength
      return new CpuStage({
        config,
        layers: init.layers,
        units: init.units,
        tensors: decoderTensorSource(init.tensors),
        activations: init.activations,
        crossAttention: { dim: model.encoder.dim }
      }, threads, quant) as unknown as DecoderStage
    }
  }
}
