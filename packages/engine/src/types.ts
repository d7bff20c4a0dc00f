import type { ModelConfig, Tensor } from '@shardmesh/model'
import type { ComponentBackend } from './components/types.ts'

/** Where a stage reads its weights from: a checkpoint's tensor map, or fetched parts. */
export type TensorSource = Pick<Map<string, Tensor>, 'get'>

/** Dtype of activations crossing a stage boundary. */
export type ActivationDType = 'F32' | 'F16'

export interface SamplingParams {
  /** 0 means greedy (argmax, lowest index on ties). @default 0 */
  temperature?: number
  /** Keep only the k most likely tokens; 0 disables. @default 0 */
  topK?: number
  /** Keep the smallest set of tokens whose probability reaches p; 1 disables. @default 1 */
  topP?: number
  /** Seed of the counter-based RNG; the draw for a position depends only on (seed, position). @default 0 */
  seed?: number
}

export interface StageInit {
  config: ModelConfig
  /** Layers `[l0, l1)` this stage runs (ignored when `units` is given). */
  layers: [number, number]
  /**
   * Units `[u0, u1)` this stage runs, `0 <= u0 < u1 <= 2·nLayers`: unit 2l is layer l's
   * attention half, unit 2l + 1 its feed-forward half, so a stage may start or end inside a
   * block. Overrides `layers`; the stage loads only the weights of its units and keeps a KV
   * cache only for the layers whose attention it runs. `unitRange(layers)` gives the units
   * of whole layers. @default unitRange(layers)
   */
  units?: [number, number]
  /** Embed token ids before the first unit. @default units[0] === 0 */
  embed?: boolean
  /** Apply the final norm and the LM head after the last unit. @default units[1] === 2·config.nLayers */
  head?: boolean
  tensors: TensorSource
  /**
   * Dtype of the hidden states this stage emits downstream; F16 halves the bytes on the
   * wire and in output logs at the cost of rounding. @default 'F32'
   */
  activations?: ActivationDType
  /**
   * Make this a decoder stage with cross-attention over an encoder output of rows of `dim`
   * values: after each layer's self-attention (in unit 2l), x += wo_c · attention(q = wq_c ·
   * rmsnorm_c(x), K = wk_c · memory, V = wv_c · memory), no RoPE, no mask, from the tensors
   * `layers.l.cross_{norm,q,k,v,o}`. Sessions then need `setMemory` before their first
   * forward (see `DecoderSession`). CPU and WebGPU backends.
   */
  crossAttention?: { dim: number }
}

/** What a stage receives for positions `[position, position + n)`. */
export type StageInput =
  | { position: number, tokens: ArrayLike<number> }
  | { position: number, hidden: Float32Array }

export interface ForwardOptions {
  /** Return logits of every position, `(n, vocab)`, instead of only the last. */
  allLogits?: boolean
  /** Sample the token that follows the last position (head stages only). */
  sample?: SamplingParams
  signal?: AbortSignal
}

export interface StageOutput {
  /** Hidden states `(n, dim)` for the next stage (non-head stages). */
  hidden?: Float32Array
  /** Logits `(vocab)` of the last position, or `(n, vocab)` with `allLogits` (head stages). */
  logits?: Float32Array
  /** The sampled next token, when `sample` was given. */
  token?: number
}

/** One session's state on one stage: its KV cache for the stage's layers. */
export interface StageSession {
  /** Positions held in the KV cache; the next forward must start here. */
  readonly position: number
  forward(input: StageInput, options?: ForwardOptions): Promise<StageOutput>
  /** Forget positions `>= position` (rewind for replay). */
  truncate(position: number): void
  close(): void
}

/** One session's step in a `forwardBatch`. */
export interface BatchItem {
  session: StageSession
  input: StageInput
  options?: ForwardOptions
}

/** A range of units (whole layers, or cut inside a block) loaded on a backend; sessions share its weights. */
export interface Stage {
  readonly config: ModelConfig
  /** Layers the stage touches, whole or in part: `layersOfUnits(units)`. */
  readonly layers: [number, number]
  /** Units `[u0, u1)` the stage runs (see `StageInit.units`): `unitRange(layers)` when it runs whole layers. */
  readonly units: [number, number]
  readonly embed: boolean
  readonly head: boolean
  createSession(): StageSession
  /**
   * Steps of several different sessions of this stage in one pass. Each item's result is
   * the one its own `session.forward` would give, bit for bit; an item with bad input is
   * rejected alone and the others go on.
   */
  forwardBatch(items: BatchItem[]): Promise<Array<PromiseSettledResult<StageOutput>>>
  close(): Promise<void>
}

export interface Backend {
  readonly name: string
  createStage(init: StageInit): Promise<Stage>
  /** Stages of an encoder component (towers, encoders); absent where the backend does not run models made of parts. */
  createEncoderStage?: ComponentBackend['createEncoderStage']
  /** Stages of an encoder–decoder model's decoder; absent where the backend does not run models made of parts. */
  createDecoderStage?: ComponentBackend['createDecoderStage']
}
