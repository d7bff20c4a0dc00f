import { ContextLengthError } from '@shardmesh/model'
import type { ModelConfig } from '@shardmesh/model'
import { firstNonFinite, roundActivations } from '../activations.ts'
import { NonFiniteActivationError, StageConfigError, StageInputError } from '../errors.ts'
import { sample } from '../sampling.ts'
import type { ActivationDType, ForwardOptions, Stage, StageInit, StageInput, StageOutput, StageSession } from '../types.ts'
import { addInPlace, attention, rmsnorm, rope, RopeTable, swiglu } from './kernels.ts'
import { KvCache } from './kv-cache.ts'
import { readRow } from './matrix.ts'
import { matmul } from './matmul.ts'
import { wasmArena } from './wasm/arena.ts'
import type { WasmArena } from './wasm/arena.ts'
import { stageWeights } from './weights.ts'
import type { StageWeights } from './weights.ts'

/** Scratch buffers for a forward pass of up to `n` positions, shared by the stage's sessions. */
class Scratch {
  n = 0
  xb = new Float32Array(0) // (n, dim)
  xb2 = new Float32Array(0) // (n, dim)
  q = new Float32Array(0) // (n, nHeads*headDim)
  att = new Float32Array(0) // (n, nHeads*headDim)
  h1 = new Float32Array(0) // (n, hidden)
  h3 = new Float32Array(0) // (n, hidden)
  scores = new Float32Array(0) // (contextLength)

  ensure (config: ModelConfig, n: number): void {
    if (n <= this.n) return
    const qDim = config.nHeads * config.headDim
    this.n = n
    this.xb = new Float32Array(n * config.dim)
    this.xb2 = new Float32Array(n * config.dim)
    this.q = new Float32Array(n * qDim)
    this.att = new Float32Array(n * qDim)
    this.h1 = new Float32Array(n * config.hiddenDim)
    this.h3 = new Float32Array(n * config.hiddenDim)
    this.scores = new Float32Array(config.contextLength)
  }
}

export class CpuStage implements Stage {
  readonly config: ModelConfig
  readonly layers: [number, number]
  readonly embed: boolean
  readonly head: boolean
  readonly activations: ActivationDType
  readonly weights: StageWeights
  readonly rope: RopeTable
  readonly scratch = new Scratch()
  /** The stage's own memory for weights and its matmul threads; freed with the stage. */
  private readonly arena: WasmArena

  constructor (init: StageInit, threads: number) {
    const { config } = init
    const [l0, l1] = init.layers
    if (!Number.isInteger(l0) || !Number.isInteger(l1) || l0 < 0 || l1 > config.nLayers || l0 > l1) {
      throw new StageConfigError(`layer range [${l0}, ${l1}) does not fit a model of ${config.nLayers} layers`)
    }
    this.config = config
    this.layers = [l0, l1]
    this.embed = init.embed ?? l0 === 0
    this.head = init.head ?? l1 === config.nLayers
    this.activations = init.activations ?? 'F32'
    this.arena = wasmArena({ threads })
    try {
      this.weights = stageWeights(config, init.tensors, l0, l1, this.embed, this.head, this.arena)
    } catch (err) {
      this.arena.close()
      throw err
    }
    this.rope = new RopeTable(config.headDim, config.ropeTheta)
  }

  createSession (): StageSession {
    return new CpuStageSession(this)
  }

  async close (): Promise<void> {
    this.arena.close()
  }
}

class CpuStageSession implements StageSession {
  private readonly stage: CpuStage
  private readonly cache: KvCache
  position = 0

  constructor (stage: CpuStage) {
    this.stage = stage
    const c = stage.config
    this.cache = new KvCache(stage.layers[1] - stage.layers[0], c.nKvHeads * c.headDim, c.contextLength)
  }

  async forward (input: StageInput, options: ForwardOptions = {}): Promise<StageOutput> {
    options.signal?.throwIfAborted()
    const { config, weights, scratch } = this.stage
    const { dim, nHeads, nKvHeads, headDim } = config
    const x = this.embedOrCheck(input)
    const n = x.length / dim
    const start = this.position
    if (start + n > config.contextLength) {
      throw new ContextLengthError(`positions ${start}..${start + n - 1} exceed the context length ${config.contextLength} of ${config.name}`)
    }
    scratch.ensure(config, n)
    this.cache.reserve(start + n)
    this.stage.rope.ensure(start + n)
    const kvDim = nKvHeads * headDim
    const { xb, xb2, q, att, h1, h3, scores } = scratch
    const shape = { nHeads, nKvHeads, headDim }
    for (let l = 0; l < weights.layers.length; l++) {
      options.signal?.throwIfAborted()
      const w = weights.layers[l]
      const kCache = this.cache.keys[l] // (positions, kvDim)
      const vCache = this.cache.values[l] // (positions, kvDim)
      const k = kCache.subarray(start * kvDim, (start + n) * kvDim) // (n, kvDim)
      const v = vCache.subarray(start * kvDim, (start + n) * kvDim) // (n, kvDim)
      // attention block
      rmsnorm(xb, x, w.attentionNorm, n, dim, config.normEps)
      matmul(w.wq, xb, n, q) // (n, qDim)
      matmul(w.wk, xb, n, k)
      matmul(w.wv, xb, n, v)
      rope(q, n, nHeads, headDim, start, this.stage.rope, config.ropeLayout)
      rope(k, n, nKvHeads, headDim, start, this.stage.rope, config.ropeLayout)
      attention(att, q, kCache, vCache, n, start, shape, scores) // (n, qDim)
      matmul(w.wo, att, n, xb2) // (n, dim)
      addInPlace(x, xb2, n * dim)
      // feed-forward block
      rmsnorm(xb, x, w.ffnNorm, n, dim, config.normEps)
      matmul(w.w1, xb, n, h1) // (n, hidden)
      matmul(w.w3, xb, n, h3) // (n, hidden)
      swiglu(h1, h3, n * config.hiddenDim)
      matmul(w.w2, h1, n, xb2) // (n, dim)
      addInPlace(x, xb2, n * dim)
    }
    this.position = start + n
    if (!this.stage.head) return { hidden: roundActivations(x, this.stage.activations) }
    return this.headOutput(x, n, start, options)
  }

  private headOutput (x: Float32Array, n: number, start: number, options: ForwardOptions): StageOutput {
    const { config, weights } = this.stage
    const { dim, vocabSize } = config
    const rows = options.allLogits === true ? n : 1
    const from = (n - rows) * dim
    const normed = new Float32Array(rows * dim)
    rmsnorm(normed, x.subarray(from), weights.norm!, rows, dim, config.normEps)
    const logits = new Float32Array(rows * vocabSize) // (rows, vocab)
    matmul(weights.output!, normed, rows, logits)
    const out: StageOutput = { logits }
    if (options.sample !== undefined) {
      out.token = sample(logits.subarray((rows - 1) * vocabSize), options.sample, start + n)
    }
    return out
  }

  /** The stage's input as hidden states `(n, dim)`, owned by this call. */
  private embedOrCheck (input: StageInput): Float32Array {
    const { config, weights, embed, layers } = this.stage
    if (input.position !== this.position) {
      throw new StageInputError(`input starts at position ${input.position}, the session is at ${this.position}`)
    }
    if ('tokens' in input) {
      if (!embed) throw new StageInputError(`stage [${layers[0]}, ${layers[1]}) takes hidden states, not token ids`)
      const n = input.tokens.length
      if (n === 0) throw new StageInputError('input has no positions')
      const x = new Float32Array(n * config.dim)
      for (let t = 0; t < n; t++) {
        const id = input.tokens[t]
        if (!Number.isInteger(id) || id < 0 || id >= config.vocabSize) {
          throw new StageInputError(`token id ${id} at input index ${t} is outside the vocabulary [0, ${config.vocabSize})`)
        }
        readRow(weights.embedding!, id, x, t * config.dim)
      }
      return x
    }
    if (embed) throw new StageInputError(`stage [${layers[0]}, ${layers[1]}) embeds token ids; it got hidden states`)
    const { hidden } = input
    if (hidden.length === 0 || hidden.length % config.dim !== 0) {
      throw new StageInputError(`hidden states of ${hidden.length} values are not a whole number of positions of dim ${config.dim}`)
    }
    const bad = firstNonFinite(hidden)
    if (bad >= 0) throw new NonFiniteActivationError(`hidden state value ${bad} (position ${this.position + Math.floor(bad / config.dim)}) is ${hidden[bad]}`)
    return hidden.slice()
  }

  truncate (position: number): void {
    if (!Number.isInteger(position) || position < 0 || position > this.position) {
      throw new StageInputError(`cannot truncate to position ${position}: the session holds ${this.position}`)
    }
    this.position = position
  }

  close (): void {
    this.position = 0
  }
}
