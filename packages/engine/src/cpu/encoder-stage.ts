import type { ComponentModelConfig, EncoderConfig } from '@shardmesh/model'
import { roundActivations } from '../activations.ts'
import { checkEncoderInput } from '../components/encoder-input.ts'
import type { CheckedEncoderInput } from '../components/encoder-input.ts'
import type { EncoderComponent, EncoderInput, EncoderOutput, EncoderStage, EncoderStageInit } from '../components/types.ts'
import { StageClosedError } from '../errors.ts'
import { layerParts, stageLabel } from '../stage-shape.ts'
import { nextTask } from '../tasks.ts'
import type { ActivationDType } from '../types.ts'
import { addInPlace, attention, meanRows, rmsnorm, rope, RopeTable, swiglu } from './kernels.ts'
import { cpuMatrix, readRow, vectorF32 } from './matrix.ts'
import type { CpuMatrix, CpuQuant } from './matrix.ts'
import { matmul } from './matmul.ts'
import { Scratch } from './stage.ts'
import { wasmArena } from './wasm/arena.ts'
import type { WasmArena } from './wasm/arena.ts'
import type { AttentionWeights, FfnWeights } from './weights.ts'
import { encoderShape } from '../components/stages.ts'

/** Longest stretch of computing between event-loop turns in a pass (ms), as the decoder stages. */
const YIELD_MS = 2

interface EncoderWeights {
  /** Token embedding `(vocab, dim)`, or the image's patch embedding `(dim, patchSize²·channels)`. */
  embedding?: CpuMatrix
  layers: Array<{ layer: number, attention?: AttentionWeights, ffn?: FfnWeights }>
  norm?: Float32Array // (dim)
  proj?: CpuMatrix // (embedDim, dim), towers only
}

/**
 * A range of one encoder component on the CPU: the decoder stages' block math (same kernels,
 * same summation orders) over one whole input per pass, with RoPE at positions 0..n-1 and a
 * causal or bidirectional mask as the component's config says.
 */
export class CpuEncoderStage implements EncoderStage {
  readonly model: ComponentModelConfig
  readonly component: EncoderComponent
  readonly layers: [number, number]
  readonly units: [number, number]
  readonly embed: boolean
  readonly pool: boolean
  private readonly config: EncoderConfig
  private readonly activations: ActivationDType
  private readonly weights: EncoderWeights
  private readonly arena: WasmArena
  private readonly rope: RopeTable
  private readonly scratch = new Scratch()
  private tail: Promise<unknown> = Promise.resolve()
  private closed = false

  constructor (init: EncoderStageInit, threads: number, quant?: CpuQuant) {
    const shape = encoderShape(init)
    this.model = shape.model
    this.component = shape.component
    this.config = shape.config
    this.units = shape.units
    this.layers = shape.layers
    this.embed = shape.embed
    this.pool = shape.pool
    this.activations = shape.activations
    this.arena = wasmArena({ threads })
    try {
      this.weights = this.load(init.tensors, quant)
    } catch (err) {
      this.arena.close()
      throw err
    }
    this.rope = new RopeTable(shape.config.headDim, shape.config.ropeTheta)
  }

  private load (tensors: EncoderStageInit['tensors'], quant?: CpuQuant): EncoderWeights {
    const p = this.component + '.'
    const matrix = (name: string): CpuMatrix => cpuMatrix(tensors.get(p + name)!, this.arena, quant)
    const vector = (name: string): Float32Array => vectorF32(tensors.get(p + name)!)
    const weights: EncoderWeights = {
      layers: layerParts(this.units).map(({ layer, attention, ffn }) => {
        const l = `layers.${layer}.`
        return {
          layer,
          attention: attention ? { norm: vector(l + 'attn_norm'), wq: matrix(l + 'wq'), wk: matrix(l + 'wk'), wv: matrix(l + 'wv'), wo: matrix(l + 'wo') } : undefined,
          ffn: ffn ? { norm: vector(l + 'ffn_norm'), w1: matrix(l + 'w1'), w2: matrix(l + 'w2'), w3: matrix(l + 'w3') } : undefined
        }
      })
    }
    if (this.embed) weights.embedding = matrix(this.component === 'image' ? 'patch_embed' : 'embed')
    if (this.pool) {
      weights.norm = vector('final_norm')
      if (this.component !== 'encoder') weights.proj = matrix('proj')
    }
    return weights
  }

  async forward (input: EncoderInput, options: { signal?: AbortSignal } = {}): Promise<EncoderOutput> {
    const pass = this.tail.then(async () => await this.pass(input, options.signal))
    this.tail = pass.catch(() => {})
    return await pass
  }

  async close (): Promise<void> {
    this.closed = true
    await this.tail
    this.arena.close()
  }

  private async pass (input: EncoderInput, signal?: AbortSignal): Promise<EncoderOutput> {
    const label = `${this.component} ${stageLabel(this.units)}`
    if (this.closed) throw new StageClosedError(`stage ${label} is closed`)
    signal?.throwIfAborted()
    const checked = checkEncoderInput({ model: this.model, component: this.component, config: this.config, embed: this.embed, label }, input)
    const { n } = checked
    const { config, scratch } = this
    scratch.ensure(config, n)
    this.rope.ensure(n)
    const x = this.embedded(checked) // (n, dim)
    let turn = performance.now()
    for (const { attention: wa, ffn: wf } of this.weights.layers) {
      if (performance.now() - turn > YIELD_MS) {
        await nextTask()
        turn = performance.now()
      }
      if (this.closed) throw new StageClosedError(`stage ${label} was closed during a forward pass`)
      signal?.throwIfAborted()
      if (wa !== undefined) this.selfAttention(wa, x, n)
      if (wf !== undefined) this.feedForward(wf, x, n)
    }
    if (!this.pool) return { hidden: roundActivations(x, this.activations), n }
    return this.output(x, n)
  }

  /** The input as the residual stream `(n, dim)`: embedded tokens, embedded patches, or a copy of the hidden states. */
  private embedded (input: CheckedEncoderInput): Float32Array {
    const { dim } = this.config
    if (input.kind === 'hidden') return input.hidden
    const x = new Float32Array(input.n * dim)
    if (input.kind === 'tokens') {
      for (let t = 0; t < input.n; t++) readRow(this.weights.embedding!, input.tokens[t], x, t * dim)
    } else {
      matmul(this.weights.embedding!, input.patches, input.n, x) // (patches, dim)
    }
    return x
  }

  /** x += wo · attention(rope(wq · norm(x)), rope(wk · norm(x)), wv · norm(x)) over the whole input; causal or every position to every position. */
  private selfAttention (w: AttentionWeights, x: Float32Array, n: number): void {
    const { config } = this
    const { dim, nHeads, nKvHeads, headDim } = config
    const { xb, xb2, q, k, v, att, scores } = this.scratch
    rmsnorm(xb, x, w.norm, n, dim, config.normEps)
    matmul(w.wq, xb, n, q) // (n, nHeads*headDim)
    matmul(w.wk, xb, n, k) // (n, nKvHeads*headDim)
    matmul(w.wv, xb, n, v)
    rope(q, n, nHeads, headDim, 0, this.rope, 'half')
    rope(k, n, nKvHeads, headDim, 0, this.rope, 'half')
    attention(att, q, k, v, n, 0, { nHeads, nKvHeads, headDim }, scores, config.causal ? undefined : n) // (n, nHeads*headDim)
    matmul(w.wo, att, n, xb2) // (n, dim)
    addInPlace(x, xb2, n * dim)
  }

  /** x += w2 · (silu(w1 · norm(x)) * w3 · norm(x)), as the decoder stages' feed-forward unit. */
  private feedForward (w: FfnWeights, x: Float32Array, n: number): void {
    const { config } = this
    const { xb, xb2, h1, h3 } = this.scratch
    rmsnorm(xb, x, w.norm, n, config.dim, config.normEps)
    matmul(w.w1, xb, n, h1) // (n, hidden)
    matmul(w.w3, xb, n, h3)
    swiglu(h1, h3, n * config.hiddenDim)
    matmul(w.w2, h1, n, xb2) // (n, dim)
    addInPlace(x, xb2, n * config.dim)
  }

  /**
   * The component's end: the encoder's memory (final norm on every position), or a tower's
   * embedding — final norm, pooled (text: the last position; image: the mean of the patches,
   * summed in float64 in patch order), projected to `(embedDim)`.
   */
  private output (x: Float32Array, n: number): EncoderOutput {
    const { dim, normEps } = this.config
    const norm = this.weights.norm!
    if (this.component === 'encoder') {
      const memory = new Float32Array(n * dim)
      rmsnorm(memory, x, norm, n, dim, normEps)
      return { hidden: roundActivations(memory, this.activations), n }
    }
    const pooled = new Float32Array(dim) // (dim)
    if (this.component === 'text') {
      rmsnorm(pooled, x.subarray((n - 1) * dim), norm, 1, dim, normEps)
    } else {
      const normed = this.scratch.xb
      rmsnorm(normed, x, norm, n, dim, normEps)
      meanRows(pooled, normed, n, dim)
    }
    const proj = this.weights.proj!
    const embedding = new Float32Array(proj.rows) // (embedDim)
    matmul(proj, pooled, 1, embedding)
    return { embedding }
  }
}
