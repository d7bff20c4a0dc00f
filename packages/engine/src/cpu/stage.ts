import type { ModelConfig } from '@shardmesh/model'
import { firstNonFinite, roundActivations } from '../activations.ts'
import { NonFiniteActivationError, StageClosedError, StageConfigError, StageInputError } from '../errors.ts'
import { checkInput, checkTruncate } from '../input.ts'
import { sample } from '../sampling.ts'
import { stageLabel, stageShape } from '../stage-shape.ts'
import { nextTask } from '../tasks.ts'
import type { ActivationDType, BatchItem, ForwardOptions, Stage, StageInit, StageInput, StageOutput, StageSession } from '../types.ts'
import { crossAttention, crossMemory, crossWeights } from './cross-attention.ts'
import type { CrossMemory, CrossWeights } from './cross-attention.ts'
import { addInPlace, attention, rmsnorm, rope, RopeTable, swiglu } from './kernels.ts'
import { KvCache } from './kv-cache.ts'
import { readRow } from './matrix.ts'
import type { CpuQuant } from './matrix.ts'
import { matmul } from './matmul.ts'
import { wasmArena } from './wasm/arena.ts'
import type { WasmArena } from './wasm/arena.ts'
import { stageWeights } from './weights.ts'
import type { AttentionWeights, FfnWeights, StageWeights } from './weights.ts'

/** Longest stretch of computing between event-loop turns in a forward pass (ms). */
const YIELD_MS = 2

/** Scratch buffers for a forward pass of up to `n` positions, shared by the stage's sessions. */
export class Scratch {
  n = 0
  xb = new Float32Array(0) // (n, dim)
  xb2 = new Float32Array(0) // (n, dim)
  q = new Float32Array(0) // (n, nHeads*headDim)
  k = new Float32Array(0) // (n, nKvHeads*headDim)
  v = new Float32Array(0) // (n, nKvHeads*headDim)
  att = new Float32Array(0) // (n, nHeads*headDim)
  h1 = new Float32Array(0) // (n, hidden)
  h3 = new Float32Array(0) // (n, hidden)
  scores = new Float32Array(0) // (nHeads, contextLength)

  ensure (config: Pick<ModelConfig, 'dim' | 'hiddenDim' | 'nHeads' | 'nKvHeads' | 'headDim' | 'contextLength'>, n: number): void {
    if (n <= this.n) return
    const qDim = config.nHeads * config.headDim
    this.n = n
    this.xb = new Float32Array(n * config.dim)
    this.xb2 = new Float32Array(n * config.dim)
    this.q = new Float32Array(n * qDim)
    this.k = new Float32Array(n * config.nKvHeads * config.headDim)
    this.v = new Float32Array(n * config.nKvHeads * config.headDim)
    this.att = new Float32Array(n * qDim)
    this.h1 = new Float32Array(n * config.hiddenDim)
    this.h3 = new Float32Array(n * config.hiddenDim)
    this.scores = new Float32Array(config.nHeads * config.contextLength)
  }
}

export class CpuStage implements Stage {
  readonly config: ModelConfig
  readonly units: [number, number]
  readonly layers: [number, number]
  /** Layers whose attention this stage runs: a session keeps KV caches for these only. */
  readonly kvLayers: [number, number]
  readonly embed: boolean
  readonly head: boolean
  readonly activations: ActivationDType
  readonly weights: StageWeights
  readonly rope: RopeTable
  readonly scratch = new Scratch()
  /** A decoder's cross-attention (`StageInit.crossAttention`): one per layer of `kvLayers`, run after its self-attention. */
  readonly cross?: { memoryDim: number, weights: CrossWeights[] }
  /** The stage's own memory for weights and its matmul threads; freed with the stage. */
  private readonly arena: WasmArena
  /** The pass in progress: passes share the scratch, so they run one at a time. */
  private tail: Promise<unknown> = Promise.resolve()
  private closed = false

  get isClosed (): boolean {
    return this.closed
  }

  constructor (init: StageInit, threads: number, quant?: CpuQuant) {
    const { config } = init
    const shape = stageShape(init)
    this.config = config
    this.units = shape.units
    this.layers = shape.layers
    this.kvLayers = shape.kvLayers
    this.embed = shape.embed
    this.head = shape.head
    this.activations = init.activations ?? 'F32'
    this.arena = wasmArena({ threads })
    try {
      this.weights = stageWeights(config, init.tensors, this.units, this.embed, this.head, this.arena, quant)
      if (init.crossAttention !== undefined) {
        const memoryDim = init.crossAttention.dim
        if (!Number.isSafeInteger(memoryDim) || memoryDim < 1) throw new StageConfigError(`crossAttention.dim must be a positive integer, got ${String(memoryDim)}`)
        this.cross = { memoryDim, weights: crossWeights(config, memoryDim, init.tensors, this.kvLayers, this.arena, quant) }
      }
    } catch (err) {
      this.arena.close()
      throw err
    }
    this.rope = new RopeTable(config.headDim, config.ropeTheta)
  }

  createSession (): StageSession {
    return this.cross !== undefined ? new CpuDecoderSession(this) : new CpuStageSession(this)
  }

  async close (): Promise<void> {
    this.closed = true
    await this.tail
    this.arena.close()
  }

  /**
   * The sessions' positions go through each layer together: every matmul reads its weights
   * once for all rows of the batch (rows are independent and a row's summation order does
   * not depend on how many there are, so each item gets exactly its single-session result);
   * RoPE, the KV cache writes and attention run per session over its own rows.
   */
  async forwardBatch (items: BatchItem[]): Promise<Array<PromiseSettledResult<StageOutput>>> {
    const pass = this.tail.then(async () => await this.pass(items))
    this.tail = pass.catch(() => {})
    return await pass
  }

  private async pass (items: BatchItem[]): Promise<Array<PromiseSettledResult<StageOutput>>> {
    const results: Array<PromiseSettledResult<StageOutput>> = new Array(items.length)
    const steps: Step[] = []
    const taken = new Set<CpuStageSession>()
    let rows = 0
    for (let i = 0; i < items.length; i++) {
      const { session, input, options = {} } = items[i]
      try {
        if (!(session instanceof CpuStageSession) || session.stage !== this) throw new StageInputError(`batch item ${i}: the session belongs to another stage`)
        if (taken.has(session)) throw new StageInputError(`batch item ${i}: the session is already in this batch`)
        options.signal?.throwIfAborted()
        const x = session.check(input)
        taken.add(session)
        const n = x.length / this.config.dim
        steps.push({ index: i, session, options, x, n, row: rows, start: session.position, memory: session.memory })
        rows += n
      } catch (err) {
        results[i] = { status: 'rejected', reason: err }
      }
    }
    if (steps.length === 0) return results
    try {
      const x = await this.layersPass(steps, rows)
      for (const s of steps) {
        const aborted = s.options.signal?.aborted === true
        results[s.index] = aborted ? { status: 'rejected', reason: s.options.signal!.reason } : { status: 'fulfilled', value: {} }
        if (!aborted) s.session.position = s.start + s.n
      }
      const done = steps.filter(s => results[s.index].status === 'fulfilled')
      const outputs = this.head ? this.headOutputs(x, done) : done.map(s => ({ hidden: roundActivations(done.length === 1 ? x : x.slice(s.row * this.config.dim, (s.row + s.n) * this.config.dim), this.activations) }))
      done.forEach((s, j) => { results[s.index] = { status: 'fulfilled', value: outputs[j] } })
    } catch (err) {
      for (const s of steps) results[s.index] = { status: 'rejected', reason: err }
    }
    return results
  }

  /**
   * The stage's units over all rows of the batch; returns the hidden states `(rows, dim)`.
   * Each layer runs the halves the stage holds, in the whole model's order, so a chain of
   * stages cut anywhere computes exactly the whole model's values. A long pass gives the
   * event loop a turn every YIELD_MS between layers, so a peer keeps moving frames on its
   * streams while it computes.
   */
  private async layersPass (steps: Step[], rows: number): Promise<Float32Array> {
    const { config, weights, scratch } = this
    const { dim } = config
    let x = steps[0].x
    if (steps.length > 1) {
      x = new Float32Array(rows * dim)
      for (const s of steps) x.set(s.x, s.row * dim)
    }
    scratch.ensure(config, rows)
    let end = 0
    for (const s of steps) {
      s.session.cache.reserve(s.start + s.n)
      end = Math.max(end, s.start + s.n)
    }
    this.rope.ensure(end)
    let turn = performance.now()
    for (const { layer, attention: wa, ffn: wf } of weights.layers) {
      if (performance.now() - turn > YIELD_MS) {
        await nextTask()
        turn = performance.now()
      }
      if (this.closed) throw new StageClosedError(`stage ${stageLabel(this.units)} was closed during a forward pass`)
      // every caller gave up: stop here (one that gave up alone is rejected after the pass)
      if (steps.every(s => s.options.signal?.aborted === true)) throw steps[0].options.signal!.reason
      if (wa !== undefined) this.attentionUnit(wa, layer - this.kvLayers[0], steps, x, rows)
      if (wa !== undefined && this.cross !== undefined) {
        const c = layer - this.kvLayers[0]
        crossAttention(config, this.cross.weights[c], c, steps as Array<Step & { memory: CrossMemory }>, x, rows, scratch)
      }
      if (wf !== undefined) this.ffnUnit(wf, x, rows)
    }
    return x
  }

  /** Unit 2l: x += wo · attention(rope(wq · norm(x)), KV cache of cache layer `c`), over all rows. */
  private attentionUnit (w: AttentionWeights, c: number, steps: Step[], x: Float32Array, rows: number): void {
    const { config, scratch } = this
    const { dim, nHeads, nKvHeads, headDim } = config
    const qDim = nHeads * headDim
    const kvDim = nKvHeads * headDim
    const { xb, xb2, q, k, v, att, scores } = scratch
    const shape = { nHeads, nKvHeads, headDim }
    rmsnorm(xb, x, w.norm, rows, dim, config.normEps)
    matmul(w.wq, xb, rows, q) // (rows, qDim)
    matmul(w.wk, xb, rows, k) // (rows, kvDim)
    matmul(w.wv, xb, rows, v)
    for (const s of steps) {
      const { n, row, start } = s
      const kCache = s.session.cache.keys[c] // (positions, kvDim)
      const vCache = s.session.cache.values[c]
      const qs = q.subarray(row * qDim, (row + n) * qDim)
      const ks = k.subarray(row * kvDim, (row + n) * kvDim)
      rope(qs, n, nHeads, headDim, start, this.rope, config.ropeLayout)
      rope(ks, n, nKvHeads, headDim, start, this.rope, config.ropeLayout)
      kCache.set(ks, start * kvDim)
      vCache.set(v.subarray(row * kvDim, (row + n) * kvDim), start * kvDim)
      attention(att.subarray(row * qDim, (row + n) * qDim), qs, kCache, vCache, n, start, shape, scores) // (n, qDim)
    }
    matmul(w.wo, att, rows, xb2) // (rows, dim)
    addInPlace(x, xb2, rows * dim)
  }

  /** Unit 2l + 1: x += w2 · (silu(w1 · norm(x)) * w3 · norm(x)), over all rows. */
  private ffnUnit (w: FfnWeights, x: Float32Array, rows: number): void {
    const { config, scratch } = this
    const { dim } = config
    const { xb, xb2, h1, h3 } = scratch
    rmsnorm(xb, x, w.norm, rows, dim, config.normEps)
    matmul(w.w1, xb, rows, h1) // (rows, hidden)
    matmul(w.w3, xb, rows, h3) // (rows, hidden)
    swiglu(h1, h3, rows * config.hiddenDim)
    matmul(w.w2, h1, rows, xb2) // (rows, dim)
    addInPlace(x, xb2, rows * dim)
  }

  /** Final norm and LM head over each step's last row (every row with `allLogits`), in one matmul. */
  private headOutputs (x: Float32Array, steps: Step[]): StageOutput[] {
    const { config, weights } = this
    const { dim, vocabSize } = config
    const counts = steps.map(s => s.options.allLogits === true ? s.n : 1)
    const total = counts.reduce((a, b) => a + b, 0)
    const normed = new Float32Array(total * dim)
    let r = 0
    steps.forEach((s, j) => {
      const from = (s.row + s.n - counts[j]) * dim
      rmsnorm(normed.subarray(r * dim), x.subarray(from), weights.norm!, counts[j], dim, config.normEps)
      r += counts[j]
    })
    const all = new Float32Array(total * vocabSize) // (total, vocab)
    matmul(weights.output!, normed, total, all)
    r = 0
    return steps.map((s, j) => {
      const logits = steps.length === 1 ? all : all.slice(r * vocabSize, (r + counts[j]) * vocabSize)
      r += counts[j]
      const out: StageOutput = { logits }
      if (s.options.sample !== undefined) out.token = sample(logits.subarray((counts[j] - 1) * vocabSize), s.options.sample, s.start + s.n)
      return out
    })
  }
}

/** One session's part of a batch: its input rows `[row, row + n)` at positions `[start, start + n)`. */
interface Step {
  index: number
  session: CpuStageSession
  options: ForwardOptions
  x: Float32Array
  n: number
  row: number
  start: number
  /** The session's memory when the step was taken (decoder stages). */
  memory?: CrossMemory
}

class CpuStageSession implements StageSession {
  readonly stage: CpuStage
  readonly cache: KvCache
  position = 0
  /** Cross-attention keys and values of the memory (decoder stages), from `setMemory`. */
  memory: CrossMemory | undefined

  constructor (stage: CpuStage) {
    this.stage = stage
    const c = stage.config
    this.cache = new KvCache(stage.kvLayers[1] - stage.kvLayers[0], c.nKvHeads * c.headDim, c.contextLength)
  }

  async forward (input: StageInput, options: ForwardOptions = {}): Promise<StageOutput> {
    const [result] = await this.stage.forwardBatch([{ session: this, input, options }])
    if (result.status === 'rejected') throw result.reason
    return result.value
  }

  /** The input as hidden states `(n, dim)` owned by the caller, once it fits this session. */
  check (input: StageInput): Float32Array {
    if (this.stage.cross !== undefined && this.memory === undefined) {
      throw new StageInputError(`stage ${stageLabel(this.stage.units)} cross-attends to an encoder output: call setMemory before the first forward`)
    }
    const checked = checkInput(this.stage, this.position, input)
    if ('hidden' in checked) return checked.hidden.slice()
    const { dim } = this.stage.config
    const x = new Float32Array(checked.n * dim)
    for (let t = 0; t < checked.n; t++) readRow(this.stage.weights.embedding!, checked.tokens[t], x, t * dim)
    return x
  }

  truncate (position: number): void {
    this.position = checkTruncate(position, this.position)
  }

  close (): void {
    this.position = 0
    this.memory = undefined
  }
}

/** A session of a decoder stage (`crossAttention`): only these have `setMemory`, so a caller can tell a stage that needs a memory by its sessions. */
class CpuDecoderSession extends CpuStageSession {
  get memoryLength (): number | undefined {
    return this.memory?.n
  }

  /** The encoder output `(n, memoryDim)` this session's cross-attention reads; its keys and values are computed here, once per layer. */
  setMemory (memory: Float32Array, n: number): void {
    const { stage } = this
    const label = stageLabel(stage.units)
    const cross = stage.cross!
    if (this.position !== 0) throw new StageInputError(`a memory is set before the first forward (position 0); the session is at ${this.position}`)
    if (!Number.isSafeInteger(n) || n < 1) throw new StageInputError(`a memory needs a positive whole number of positions, got ${n}`)
    if (!(memory instanceof Float32Array) || memory.length !== n * cross.memoryDim) {
      throw new StageInputError(`a memory of ${n} positions of dim ${cross.memoryDim} has ${n * cross.memoryDim} values, got ${memory?.length}`)
    }
    const bad = firstNonFinite(memory)
    if (bad >= 0) throw new NonFiniteActivationError(`memory value ${bad} (position ${Math.floor(bad / cross.memoryDim)}) is ${memory[bad]}`)
    if (stage.isClosed) throw new StageClosedError(`stage ${label} is closed`)
    this.memory = crossMemory(cross.weights, memory, n)
  }
}
