import { checkComponentConfig, componentConfig, decoderModelConfig } from '@shardmesh/model'
import type { ComponentModelConfig, EncoderConfig, ModelConfig } from '@shardmesh/model'
import { StageConfigError } from '../errors.ts'
import { stageShape } from '../stage-shape.ts'
import type { ActivationDType, StageInit } from '../types.ts'
import { checkStageTensors, decoderTensorSource } from './tensors.ts'
import type { DecoderStageInit, EncoderComponent, EncoderStageInit } from './types.ts'

/** What an encoder stage runs, resolved and checked from its init the same way on every backend. */
export interface EncoderShape {
  model: ComponentModelConfig
  component: EncoderComponent
  config: EncoderConfig
  units: [number, number]
  layers: [number, number]
  embed: boolean
  pool: boolean
  activations: ActivationDType
}

/** Checks an encoder stage's model, component, range and tensors (StageConfigError / the model's errors). */
export function encoderShape (init: EncoderStageInit): EncoderShape {
  const model = checkComponentConfig(init.model)
  const { component } = init
  if (!['text', 'image', 'encoder'].includes(component)) {
    throw new StageConfigError(`${String(component)} is not an encoder component (text, image or encoder); a decoder runs in createDecoderStage`)
  }
  let config: EncoderConfig
  try {
    config = componentConfig(model, component)
  } catch (err) {
    throw new StageConfigError((err as Error).message, { cause: err })
  }
  const shape = stageShape({ config: { name: `${model.name}'s ${component}`, nLayers: config.nLayers } as ModelConfig, layers: init.layers, units: init.units })
  checkStageTensors(model, component, shape, init.tensors)
  return { model, component, config, units: shape.units, layers: shape.layers, embed: shape.embed, pool: shape.head, activations: init.activations ?? 'F32' }
}

/**
 * A decoder stage is the Llama stage (`decoderModelConfig`, the tensors renamed by
 * `decoderTensorSource`) with cross-attention over the encoder's `dim`-wide memory: the init
 * every backend's `createStage` takes. Its tensors are checked under their component names
 * first, so errors name those; its sessions have `setMemory` and `memoryLength`.
 */
export function decoderStageInit (init: DecoderStageInit): StageInit & { crossAttention: { dim: number } } {
  const model = checkComponentConfig(init.model)
  if (model.kind !== 'encoder_decoder') throw new StageConfigError(`${model.name} is a ${model.kind} model; only an encoder_decoder model has a decoder`)
  const config = decoderModelConfig(model)
  checkStageTensors(model, 'decoder', stageShape({ config, layers: init.layers, units: init.units }), init.tensors)
  return { config, layers: init.layers, units: init.units, tensors: decoderTensorSource(init.tensors), activations: init.activations, crossAttention: { dim: model.encoder.dim } }
}
