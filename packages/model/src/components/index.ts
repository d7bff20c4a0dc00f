// Models made of parts (component sharding): two-tower and encoder–decoder configs, tensor
// names and shapes, synthetic models, and their config.json + safetensors encoding.
export { componentConfig, componentNames } from './types.ts'
export type { ComponentModel, ComponentModelConfig, ComponentName, DecoderConfig, EncoderConfig, EncoderDecoderConfig, EncoderDecoderPart, ImageTowerConfig, TextTowerConfig, TowerName, TwoTowerConfig } from './types.ts'
export { BLOCK_TENSORS, CROSS_TENSORS, checkComponentTensors, componentModelShapes, componentPartSizes, componentTensorShapes } from './shapes.ts'
export type { ComponentPart, ComponentPartSizes } from './shapes.ts'
export { checkComponentConfig, COMPONENT_MODEL_TYPES, componentConfigJson, decoderModelConfig, parseComponentConfig } from './config.ts'
export { syntheticEncoderDecoder, syntheticTwoTower } from './synthetic.ts'
export type { SyntheticEncoderDecoderInit, SyntheticTwoTowerInit } from './synthetic.ts'
export { decodeComponentModel, encodeComponentModel } from './codec.ts'
export type { ComponentDType, ComponentModelFiles, EncodeComponentModelOptions } from './codec.ts'
