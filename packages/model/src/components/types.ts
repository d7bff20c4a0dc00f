import type { Tensor } from '../types.ts'

/**
 * One stack of Llama-style blocks (RMSNorm, RoPE in `half` pairing, GQA attention, SwiGLU
 * feed-forward): a tower of a two-tower model, or the encoder or decoder of an
 * encoder–decoder model.
 */
export interface EncoderConfig {
  dim: number
  /** Feed-forward width. */
  hiddenDim: number
  nLayers: number
  nHeads: number
  /** Key/value heads, a divisor of nHeads. */
  nKvHeads: number
  /** Head size; even (RoPE pairs). */
  headDim: number
  normEps: number
  ropeTheta: number
  /** Most positions one input may have (tokens, patches, or decoder positions). */
  contextLength: number
  /** Attention mask: `true`, a position attends to itself and earlier ones; `false`, to every position of the input. */
  causal: boolean
}

/** A text tower: token embedding, blocks, final norm, pooled at the last position, projected. */
export type TextTowerConfig = EncoderConfig & { vocabSize: number }

/**
 * An image tower: the image `(imageSize, imageSize, channels)`, row-major and channel-last, is
 * cut into `(imageSize / patchSize)²` patches in row-major order; each patch (its pixels
 * row-major, channel-last: `patchSize² · channels` values) goes through a linear patch
 * embedding. Blocks, final norm, mean-pooled over the patches, projected.
 */
export type ImageTowerConfig = EncoderConfig & { imageSize: number, patchSize: number, channels: number }

/** A CLIP-style model: a text and an image tower projected into one embedding space. */
export interface TwoTowerConfig {
  kind: 'two_tower'
  name: string
  /** Width of the joint embedding space (the rows of both projections). */
  embedDim: number
  text: TextTowerConfig
  image: ImageTowerConfig
}

/** The decoder of an encoder–decoder model: causal, with cross-attention over the encoder output. */
export type DecoderConfig = EncoderConfig & {
  /** Sampled ids that end generation. @default [] */
  stopIds?: number[]
  /** The token a decoder run starts from. @default 0 */
  startId?: number
}

/**
 * A T5/Whisper-style model: the encoder's output (after its final norm) is the memory every
 * decoder block cross-attends to. Both share `vocabSize` (separate embedding tables; the
 * decoder has its own LM head).
 */
export interface EncoderDecoderConfig {
  kind: 'encoder_decoder'
  name: string
  vocabSize: number
  encoder: EncoderConfig
  decoder: DecoderConfig
}

export type ComponentModelConfig = TwoTowerConfig | EncoderDecoderConfig

/** The components of a two-tower model. */
export type TowerName = 'text' | 'image'
/** The components of an encoder–decoder model. */
export type EncoderDecoderPart = 'encoder' | 'decoder'
export type ComponentName = TowerName | EncoderDecoderPart

/** A model made of parts, each of which may run on its own peers. Tensor names start with the component's name (`text.`, `decoder.`, …). */
export interface ComponentModel {
  config: ComponentModelConfig
  tensors: Map<string, Tensor>
}

/** The component names of a model, in the order their parts are listed: `['text', 'image']` or `['encoder', 'decoder']`. */
export function componentNames (config: ComponentModelConfig): ComponentName[] {
  return config.kind === 'two_tower' ? ['text', 'image'] : ['encoder', 'decoder']
}

/** The block configuration of one component. */
export function componentConfig (config: ComponentModelConfig, component: ComponentName): EncoderConfig {
  if (config.kind === 'two_tower' && (component === 'text' || component === 'image')) return config[component]
  if (config.kind === 'encoder_decoder' && (component === 'encoder' || component === 'decoder')) return config[component]
  throw new RangeError(`${config.name} (${config.kind}) has no component ${String(component)}; it has ${componentNames(config).join(' and ')}`)
}
