import type { ModelConfig } from '@shardmesh/model'
import { roundActivations } from '../activations.ts'
import { StageConfigError } from '../errors.ts'
import { sample } from '../sampling.ts'
import { stageLabel, stageShape } from '../stage-shape.ts'
import type { ActivationDType, BatchItem, ForwardOptions, SamplingParams, Stage, StageInit, StageOutput, StageSession } from '../types.ts'
import type { GpuContext } from './context.ts'
import type { CheckedInput } from '../input.ts'
import { destroyCrossWeights, uploadCrossWeights } from './cross-attention.ts'
import type { GpuCrossBuffers, GpuCrossWeights } from './cross-attention.ts'
import type { Encode } from './kernels/encode.ts'
import type { GpuKvCache } from './kv-cache.ts'
import { ropeTable } from './ops.ts'
import { ParamPool } from './params.ts'
import type { Step } from './params.ts'
import { forwardPlan } from './plan.ts'
import { Readback } from './readback.ts'
import { MAX_BATCH, MAX_GPU_TOP_K, Scratch } from './scratch.ts'
import { WebGpuDecoderSession, WebGpuStageSession } from './session.ts'
import { destroyStageWeights, uploadStageWeights } from './weights.ts'
import type { GpuStageWeights } from './weights.ts'

/**
 * Candidates the GPU ranks for a sampling request: 1 for greedy (argmax), topK when it is
 * small enough, else 0 (the JS sampler ranks the read-back logits).
 */
function gpuCandidates (params: SamplingParams | undefined): number {
  if (params === undefined) return 0
  if ((params.temperature ?? 0) <= 0) return 1
  const k = params.topK ?? 0
  return k > 0 && k <= MAX_GPU_TOP_K ? k : 0
}

/**
 * Units [u0, u1) (whole layers, or a cut inside a block) on a WebGPU device: weights
 * uploaded once, activations in a shared scratch, one submission per forward pass (per
 * MAX_BATCH positions of a long prefill).
 */
export class WebGpuStage implements Stage {
  readonly config: ModelConfig
  readonly units: [number, number]
  readonly layers: [number, number]
  /** Layers whose attention this stage runs: a session keeps KV caches for these only. */
  readonly kvLayers: [number, number]
  readonly embed: boolean
  readonly head: boolean
  readonly activations: ActivationDType
  readonly ctx: GpuContext
  readonly weights: GpuStageWeights
  readonly pool: ParamPool
  readonly scratch: Scratch
  readonly ropeTable: GPUBuffer
  /** A decoder's cross-attention (`StageInit.crossAttention`): one per layer of `kvLayers`, run after its self-attention. */
  readonly cross?: { memoryDim: number, weights: GpuCrossWeights[] }
  private readonly readback: Readback
  private readonly sessions = new Set<WebGpuStageSession>()
  private tail: Promise<unknown> = Promise.resolve()
  private closed = false

  private constructor (ctx: GpuContext, init: StageInit) {
    const { config } = init
    const shape = stageShape(init)
    this.ctx = ctx
    this.config = config
    this.units = shape.units
    this.layers = shape.layers
    this.kvLayers = shape.kvLayers
    this.embed = shape.embed
    this.head = shape.head
    this.activations = init.activations ?? 'F32'
    if (init.crossAttention !== undefined) {
      const memoryDim = init.crossAttention.dim
      if (!Number.isSafeInteger(memoryDim) || memoryDim < 1) throw new StageConfigError(`crossAttention.dim must be a positive integer, got ${String(memoryDim)}`)
      this.cross = { memoryDim, weights: uploadCrossWeights(ctx, config, memoryDim, init.tensors, this.kvLayers) }
    }
    try {
      this.weights = uploadStageWeights(ctx, config, init.tensors, this.units, this.embed, this.head)
    } catch (err) {
      if (this.cross !== undefined) destroyCrossWeights(this.cross.weights)
      throw err
    }
    this.pool = new ParamPool(ctx)
    this.scratch = new Scratch(ctx, config, this.head)
    const table = ropeTable(config.headDim, config.ropeTheta, config.contextLength)
    this.ropeTable = ctx.storage(table.byteLength, 'rope table')
    ctx.device.queue.writeBuffer(this.ropeTable, 0, table.buffer, table.byteOffset, table.byteLength)
    this.readback = new Readback(ctx)
  }

  static async create (ctx: GpuContext, init: StageInit): Promise<WebGpuStage> {
    const label = Array.isArray(init.units) ? stageLabel(init.units) : `[${init.layers[0]}, ${init.layers[1]})`
    return await ctx.guarded(`stage ${label}`, () => new WebGpuStage(ctx, init))
  }

  get isClosed (): boolean {
    return this.closed
  }

  /** Sessions of a decoder stage have `setMemory`; others do not. */
  createSession (): StageSession {
    const session = this.cross !== undefined ? new WebGpuDecoderSession(this) : new WebGpuStageSession(this)
    this.sessions.add(session)
    return session
  }

  /**
   * The items one after another, each its own forward pass (passes on a stage are serialized
   * by `exclusive`): the GPU kernels do not yet batch rows of different sessions.
   */
  async forwardBatch (items: BatchItem[]): Promise<Array<PromiseSettledResult<StageOutput>>> {
    return await Promise.allSettled(items.map(async ({ session, input, options }) => await session.forward(input, options)))
  }

  /** The dispatches of a forward pass over `kv` and a decoder session's memory (bind groups for the current buffers). */
  plan (kv: GpuKvCache, memory?: GpuCrossBuffers): Encode {
    return forwardPlan(this, kv, memory)
  }

  /** Run `work` after every earlier forward pass of this stage (they share the scratch). */
  async exclusive<T> (work: () => Promise<T>): Promise<T> {
    const result = this.tail.then(work)
    this.tail = result.catch(() => {})
    return await result
  }

  /**
   * One forward pass of `session` over a checked input, in batches of at most MAX_BATCH
   * positions, each a single submission. Leaves the session's position to the caller.
   */
  async run (session: WebGpuStageSession, input: CheckedInput, options: ForwardOptions): Promise<StageOutput> {
    const { ctx, config, scratch } = this
    const { dim, vocabSize } = config
    const { n } = input
    const start = session.position
    const allRows = options.allLogits === true
    const k = this.head ? gpuCandidates(options.sample) : 0
    const hidden = this.head ? undefined : new Float32Array(n * dim) // (n, dim)
    const logits = this.head ? new Float32Array((allRows ? n : 1) * vocabSize) // (rows, vocab)
      : undefined
    let ranked: Uint32Array | undefined // (k) of (index, value bits)
    for (let b = 0; b < n; b += MAX_BATCH) {
      options.signal?.throwIfAborted()
      const bn = Math.min(MAX_BATCH, n - b)
      const last = b + bn === n
      const step: Step = { n: bn, start: start + b, rows: this.head ? (allRows ? bn : last ? 1 : 0) : 0, k: last ? k : 0, memory: session.crossMemory?.n ?? 0 }
      const out = await ctx.guarded('forward', async () => {
        scratch.ensure(bn)
        session.kv.reserve(start + b + bn)
        const memory = session.memoryWork() // a new memory's cross keys and values, before the layers
        const plan = session.plan()
        this.pool.write(step)
        const src = 'tokens' in input ? input.tokens : input.hidden
        ctx.device.queue.writeBuffer('tokens' in input ? scratch.tokens : scratch.x, 0, src.buffer, src.byteOffset + b * (src.length / n) * 4, bn * (src.length / n) * 4)
        const outBytes = (this.head ? step.rows * vocabSize : bn * dim) * 4
        const staging = this.readback.ensure(outBytes + step.k * 8)
        const encoder = ctx.device.createCommandEncoder()
        const pass = encoder.beginComputePass()
        memory?.encode(pass, step)
        plan(pass, step)
        pass.end()
        if (outBytes > 0) encoder.copyBufferToBuffer(this.head ? scratch.logits : scratch.x, 0, staging, 0, outBytes)
        if (step.k > 0) encoder.copyBufferToBuffer(scratch.topk, 0, staging, outBytes, step.k * 8)
        ctx.device.queue.submit([encoder.finish()])
        memory?.submitted()
        if (outBytes + step.k * 8 === 0) { // an early batch of a head stage's long prefill
          await ctx.device.queue.onSubmittedWorkDone()
          return { bytes: new ArrayBuffer(0), outBytes }
        }
        return { bytes: await this.readback.read(outBytes + step.k * 8), outBytes }
      })
      const values = new Float32Array(out.bytes, 0, out.outBytes / 4)
      if (hidden !== undefined) hidden.set(values, b * dim)
      else if (step.rows > 0) logits!.set(values, allRows ? b * vocabSize : 0)
      if (step.k > 0) ranked = new Uint32Array(out.bytes, out.outBytes, Math.min(step.k, vocabSize) * 2)
    }
    options.signal?.throwIfAborted()
    if (hidden !== undefined) return { hidden: roundActivations(hidden, this.activations) }
    const result: StageOutput = { logits }
    if (options.sample !== undefined) result.token = this.pick(logits!.subarray(logits!.length - vocabSize), ranked, options.sample, start + n)
    return result
  }

  /**
   * The next token, the same as the CPU sampler would draw from `row`: the GPU's argmax for
   * greedy; for temperature > 0, the JS draw over the GPU's top-k candidates (sorted like the
   * JS sampler sorts), or over the whole row when top-k is off or large.
   */
  private pick (row: Float32Array, ranked: Uint32Array | undefined, params: SamplingParams, position: number): number {
    if (ranked === undefined) return sample(row, params, position)
    if ((params.temperature ?? 0) <= 0) return ranked[0]
    const count = ranked.length / 2
    const candidates = new Float32Array(count)
    const bits = new Float32Array(ranked.buffer, ranked.byteOffset, ranked.length)
    for (let i = 0; i < count; i++) candidates[i] = bits[2 * i + 1]
    return ranked[2 * sample(candidates, params, position)]
  }

  forget (session: WebGpuStageSession): void {
    this.sessions.delete(session)
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.tail
    for (const s of this.sessions) s.close()
    destroyStageWeights(this.weights)
    if (this.cross !== undefined) destroyCrossWeights(this.cross.weights)
    this.scratch.destroy()
    this.pool.destroy()
    this.ropeTable.destroy()
    this.readback.destroy()
  }
}
