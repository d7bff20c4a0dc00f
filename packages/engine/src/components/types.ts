import type { ComponentModelConfig, EncoderDecoderConfig } from '@shardmesh/model'
import type { ActivationDType, Stage, StageSession, TensorSource } from '../types.ts'

/** The components an `EncoderStage` runs: a tower of a two-tower model, or the encoder of an encoder–decoder model. */
export type EncoderComponent = 'text' | 'image' | 'encoder'

export interface EncoderStageInit {
  model: ComponentModelConfig
  component: EncoderComponent
  /** Layers `[l0, l1)` of the component (ignored when `units` is given). */
  layers: [number, number]
  /**
   * Units `[u0, u1)` of the component, as `StageInit.units`: unit 2l is layer l's
   * attention half, 2l + 1 its feed-forward half. @default unitRange(layers)
   */
  units?: [number, number]
  /** The model's tensors under their component names (`text.embed`, `image.layers.0.wq`, …); only the stage's are read. */
  tensors: TensorSource
  /** Dtype of the hidden states the stage emits (not of a tower's embedding). @default 'F32' */
  activations?: ActivationDType
}

/**
 * One input of an encoder pass: token ids (first stage of `text` or `encoder`), an image
 * `(imageSize, imageSize, channels)` row-major and channel-last (first stage of `image`), or
 * the hidden states `(n, dim)` an earlier stage of the same component emitted.
 */
export type EncoderInput =
  | { tokens: ArrayLike<number> }
  | { pixels: Float32Array }
  | { hidden: Float32Array, n: number }

/**
 * What an encoder stage emits: hidden states `(n, dim)` for the next stage of the component
 * (from the last `encoder` stage: after the final norm, the memory the decoder attends to), or
 * from the last stage of a tower its embedding `(embedDim)` — final norm, pooled (text: last
 * position; image: mean over patches), projected; not normalized.
 */
export type EncoderOutput = { hidden: Float32Array, n: number } | { embedding: Float32Array }

/**
 * Layers (or units) of one encoder component loaded on a backend. Stateless: each forward is
 * one whole input (every position at once, as bidirectional attention needs), and a chain of
 * stages over consecutive ranges gives the whole component's values bit for bit.
 */
export interface EncoderStage {
  readonly model: ComponentModelConfig
  readonly component: EncoderComponent
  /** Layers the stage touches, whole or in part. */
  readonly layers: [number, number]
  readonly units: [number, number]
  /** Takes token ids or pixels (`u0 === 0`). */
  readonly embed: boolean
  /** Applies the final norm and, for a tower, pooling and projection (`u1 === 2·nLayers`). */
  readonly pool: boolean
  forward(input: EncoderInput, options?: { signal?: AbortSignal }): Promise<EncoderOutput>
  close(): Promise<void>
}

export interface DecoderStageInit {
  model: EncoderDecoderConfig
  /** Layers `[l0, l1)` of the decoder (ignored when `units` is given). */
  layers: [number, number]
  /** Units `[u0, u1)` of the decoder; a layer's cross-attention belongs to its attention unit 2l. @default unitRange(layers) */
  units?: [number, number]
  /** The model's tensors under their component names (`decoder.embed`, `decoder.layers.0.cross_q`, …). */
  tensors: TensorSource
  /** @default 'F32' */
  activations?: ActivationDType
}

/** A session of a decoder stage: its KV cache plus the encoder output it cross-attends to. */
export interface DecoderSession extends StageSession {
  /**
   * The encoder output `(n, memoryDim)` (the last encoder stage's `hidden`), before the first
   * forward. Each layer's cross-attention keys and values are computed from it here, once,
   * and kept for the session. Only at position 0 (a fresh session, or one truncated to 0).
   */
  setMemory(memory: Float32Array, n: number): void
  /** Positions of the memory set, or undefined before `setMemory`. */
  readonly memoryLength: number | undefined
}

/** A stage of a decoder with cross-attention: the `Stage` contract, with sessions that take a memory. */
export interface DecoderStage extends Stage {
  createSession(): DecoderSession
}

/** Backends that run models made of parts. */
export interface ComponentBackend {
  createEncoderStage(init: EncoderStageInit): Promise<EncoderStage>
  createDecoderStage(init: DecoderStageInit): Promise<DecoderStage>
}
