import { convertTensor } from '../convert.ts'
import { CorruptCheckpointError } from '../errors.ts'
import { encodeSafetensors } from '../safetensors/encode.ts'
import { parseSafetensors } from '../safetensors/parse.ts'
import { componentConfigJson, parseComponentConfig } from './config.ts'
import { checkComponentTensors, componentModelShapes } from './shapes.ts'
import type { ComponentModel } from './types.ts'

/** Storage dtypes a component model is written in. */
export type ComponentDType = 'F32' | 'F16'

export interface EncodeComponentModelOptions {
  /** Dtype of every tensor in the file (norm vectors too); F16 rounds each value to half. @default 'F32' */
  dtype?: ComponentDType
}

/** A component model's two files: `config.json` (text) and `model.safetensors` (bytes). */
export interface ComponentModelFiles {
  config: string
  safetensors: Uint8Array
}

/**
 * The model as its `config.json` (the config with `model_type` `shardmesh_two_tower` or
 * `shardmesh_encoder_decoder`) and one `model.safetensors` with the tensors under their
 * component names, in file order (component by component: embedding, layers, head).
 */
export function encodeComponentModel (model: ComponentModel, opts: EncodeComponentModelOptions = {}): ComponentModelFiles {
  const dtype = opts.dtype ?? 'F32'
  if (dtype !== 'F32' && dtype !== 'F16') throw new RangeError(`dtype must be 'F32' or 'F16', got ${String(dtype)}`)
  const config = parseComponentConfig(componentConfigJson(model.config), model.config.name)
  checkComponentTensors(config, model.tensors, config.name)
  const tensors = [...componentModelShapes(config).keys()].map(name => convertTensor(model.tensors.get(name)!, dtype))
  return { config: JSON.stringify(componentConfigJson(config), null, 2) + '\n', safetensors: encodeSafetensors(tensors) }
}

/**
 * The model from its two files, checked strictly: the config field by field
 * (`parseComponentConfig`), then every tensor against it (missing → MissingFieldError, not the
 * model's → UnsupportedArchitectureError, wrong shape or size → CorruptCheckpointError).
 * Tensor data are views into `safetensors`. `source` names the files in errors.
 */
export function decodeComponentModel (files: { config: string, safetensors: Uint8Array }, source: string): ComponentModel {
  let json: unknown
  try {
    json = JSON.parse(files.config)
  } catch (err) {
    throw new CorruptCheckpointError(`${source}: config.json is not valid JSON`, { cause: err })
  }
  const config = parseComponentConfig(json, `${source}/config.json`)
  const tensors = parseSafetensors(files.safetensors, `${source}/model.safetensors`)
  checkComponentTensors(config, tensors, `${source}/model.safetensors`)
  return { config, tensors }
}
