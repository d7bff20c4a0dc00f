import { fillNormal, LOGIT_STD, NORM_NOISE } from '../synthetic.ts'
import type { Tensor } from '../types.ts'
import { checkComponentConfig } from './config.ts'
import { componentModelShapes } from './shapes.ts'
import type { ComponentModel, ComponentModelConfig, DecoderConfig, EncoderConfig, EncoderDecoderConfig, ImageTowerConfig, TextTowerConfig, TwoTowerConfig } from './types.ts'

/** Options of `syntheticTwoTower`; every field is optional (a component's `headDim` defaults to dim / nHeads). */
export interface SyntheticTwoTowerInit {
  /** PRNG seed; the same init always gives the same bytes. @default 1 */
  seed?: number
  /** @default 'synthetic-two-tower' */
  name?: string
  /** @default 32 */
  embedDim?: number
  /** @default dim 48, hiddenDim 128, 3 layers, 4 heads, 2 kv heads, causal (as CLIP's text tower), vocabSize 200, contextLength 32 */
  text?: Partial<TextTowerConfig>
  /** @default dim 40, hiddenDim 96, 3 layers, 4 heads, 4 kv heads, bidirectional, 16×16×3 images in 4×4 patches (16 patches), contextLength 16 */
  image?: Partial<ImageTowerConfig>
}

/** Options of `syntheticEncoderDecoder`; every field is optional. */
export interface SyntheticEncoderDecoderInit {
  /** @default 1 */
  seed?: number
  /** @default 'synthetic-encoder-decoder' */
  name?: string
  /** @default 200 */
  vocabSize?: number
  /** @default dim 48, hiddenDim 128, 3 layers, 6 heads, 2 kv heads, bidirectional, contextLength 32 */
  encoder?: Partial<EncoderConfig>
  /** @default dim 40, hiddenDim 112, 3 layers, 4 heads, 2 kv heads, causal, contextLength 64, startId 1, stopIds [2] */
  decoder?: Partial<DecoderConfig>
}

const BLOCK_DEFAULTS = { normEps: 1e-5, ropeTheta: 10000 }

/** A deterministic random CLIP-style model (F32) for tests and demos. */
export function syntheticTwoTower (init: SyntheticTwoTowerInit = {}): ComponentModel {
  const config: TwoTowerConfig = {
    kind: 'two_tower',
    name: init.name ?? 'synthetic-two-tower',
    embedDim: init.embedDim ?? 32,
    text: blockOf({ dim: 48, hiddenDim: 128, nLayers: 3, nHeads: 4, nKvHeads: 2, contextLength: 32, causal: true, vocabSize: 200 }, init.text),
    image: blockOf({ dim: 40, hiddenDim: 96, nLayers: 3, nHeads: 4, nKvHeads: 4, contextLength: 16, causal: false, imageSize: 16, patchSize: 4, channels: 3 }, init.image)
  }
  return synthesize(config, init.seed ?? 1)
}

/** A deterministic random T5/Whisper-style model (F32) for tests and demos. */
export function syntheticEncoderDecoder (init: SyntheticEncoderDecoderInit = {}): ComponentModel {
  const config: EncoderDecoderConfig = {
    kind: 'encoder_decoder',
    name: init.name ?? 'synthetic-encoder-decoder',
    vocabSize: init.vocabSize ?? 200,
    encoder: blockOf({ dim: 48, hiddenDim: 128, nLayers: 3, nHeads: 6, nKvHeads: 2, contextLength: 32, causal: false }, init.encoder),
    decoder: blockOf({ dim: 40, hiddenDim: 112, nLayers: 3, nHeads: 4, nKvHeads: 2, contextLength: 64, causal: true, startId: 1, stopIds: [2] }, init.decoder)
  }
  return synthesize(config, init.seed ?? 1)
}

function blockOf<T extends EncoderConfig> (defaults: Omit<T, 'headDim' | 'normEps' | 'ropeTheta'>, init: Partial<T> = {}): T {
  const merged = { ...BLOCK_DEFAULTS, ...defaults, ...init } as unknown as T
  merged.headDim = init.headDim ?? merged.dim / merged.nHeads
  return merged
}

/**
 * Scaled as `syntheticModel`: projections N(0, 1/√fan_in); token embeddings and the LM head
 * N(0, LOGIT_STD/√dim), so the current token dominates the residual stream and logits have
 * std ≈ LOGIT_STD; norm weights 1 ± NORM_NOISE. Each tensor is its own stream seeded by
 * (seed, name).
 */
function synthesize (init: ComponentModelConfig, seed: number): ComponentModel {
  const config = checkComponentConfig(init)
  const tensors = new Map<string, Tensor>()
  for (const [name, { shape }] of componentModelShapes(config)) {
    const values = new Float32Array(shape.reduce((a, b) => a * b, 1))
    if (shape.length === 1) fillNormal(values, seed, name, 1, NORM_NOISE)
    else if (/\.(embed|head)$/.test(name)) fillNormal(values, seed, name, 0, LOGIT_STD / Math.sqrt(shape[1]))
    else fillNormal(values, seed, name, 0, 1 / Math.sqrt(shape[1]))
    tensors.set(name, { name, dtype: 'F32', shape, data: new Uint8Array(values.buffer) })
  }
  return { config, tensors }
}
