// Models made of parts (component sharding): encoder stages, decoder stages with
// cross-attention, tower fusion and the encoder–decoder reference.
export type { ComponentBackend, DecoderSession, DecoderStage, DecoderStageInit, EncoderComponent, EncoderInput, EncoderOutput, EncoderStage, EncoderStageInit } from './types.ts'
export { fuseTowers } from './fuse.ts'
export type { FusedTowers } from './fuse.ts'
export { encoderDecoderGenerate } from './generate.ts'
export type { EncoderDecoderGenerateInit, EncoderDecoderResult } from './generate.ts'
export { decoderTensorSource, stageComponentTensors } from './tensors.ts'
export { patchCount, patchRows } from './encoder-input.ts'
