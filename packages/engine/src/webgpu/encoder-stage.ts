import type { ComponentModelConfig, EncoderConfig } from '@shardmesh/model'
import { roundActivations } from '../activations.ts'
import { checkEncoderInput } from '../components/encoder-input.ts'
import type { CheckedEncoderInput } from '../components/encoder-input.ts'
import type { EncoderComponent, EncoderInput, EncoderOutput, EncoderStage, EncoderStageInit } from '../components/types.ts'
import { StageClosedError } from '../errors.ts'
import { stageLabel } from '../stage-shape.ts'
import type { ActivationDType } from '../types.ts'
import type { GpuContext } from './context.ts'
import { EncoderScratch, encoderPlan } from './encoder-plan.ts'
import { destroyEncoderWeights, uploadEncoderWeights } from './encoder-weights.ts'
import type { GpuEncoderWeights } from './encoder-weights.ts'
import type { Encode } from './kernels/encode.ts'
import { ropeTable } from './ops.ts'
import { ParamPool } from './params.ts'
import { Readback } from './readback.ts'
import { encoderShape } from '../components/stages.ts'

/**
 * A range of one encoder component on a WebGPU device: the decoder stages' kernels over one
 * whole input per pass (RoPE at positions 0..n-1, a causal or bidirectional mask as the
 * component's config says), weights uploaded once, one submission per pass.
 */
export class WebGpuEncoderStage implements EncoderStage {
  readonly model: ComponentModelConfig
  readonly component: EncoderComponent
  readonly layers: [number, number]
  readonly units: [number, number]
  readonly embed: boolean
  readonly pool: boolean
  private readonly ctx: GpuContext
  private readonly config: EncoderConfig
  private readonly activations: ActivationDType
  private readonly weights: GpuEncoderWeights
  private readonly params: ParamPool
  private readonly scratch: EncoderScratch
  private readonly ropeTable: GPUBuffer
  private readonly readback: Readback
  private cached: { encode: Encode, generation: number } | undefined
  private tail: Promise<unknown> = Promise.resolve()
  private closed = false

  private constructor (ctx: GpuContext, init: EncoderStageInit) {
    const shape = encoderShape(init)
    const { model, component, config } = shape
    this.ctx = ctx
    this.model = model
    this.component = component
    this.config = config
    this.units = shape.units
    this.layers = shape.layers
    this.embed = shape.embed
    this.pool = shape.pool
    this.activations = shape.activations
    this.weights = uploadEncoderWeights(ctx, component, { units: this.units, embed: this.embed, head: this.pool }, init.tensors)
    const image = model.kind === 'two_tower' && component === 'image' ? model.image : undefined
    const inputWidth = image !== undefined ? image.patchSize ** 2 * image.channels : 1
    this.scratch = new EncoderScratch(ctx, config, inputWidth, model.kind === 'two_tower' ? model.embedDim : 0)
    this.params = new ParamPool(ctx)
    const table = ropeTable(config.headDim, config.ropeTheta, config.contextLength)
    this.ropeTable = ctx.storage(table.byteLength, 'rope table')
    ctx.device.queue.writeBuffer(this.ropeTable, 0, table.buffer, table.byteOffset, table.byteLength)
    this.readback = new Readback(ctx)
  }

  static async create (ctx: GpuContext, init: EncoderStageInit): Promise<WebGpuEncoderStage> {
    return await ctx.guarded(`${String(init.component)} stage`, () => new WebGpuEncoderStage(ctx, init))
  }

  async forward (input: EncoderInput, options: { signal?: AbortSignal } = {}): Promise<EncoderOutput> {
    const pass = this.tail.then(async () => await this.pass(input, options.signal))
    this.tail = pass.catch(() => {})
    return await pass
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.tail
    destroyEncoderWeights(this.weights)
    this.scratch.destroy()
    this.params.destroy()
    this.ropeTable.destroy()
    this.readback.destroy()
  }

  /** The dispatches of a pass, bound to the current scratch (rebuilt when it grows). */
  private plan (): Encode {
    if (this.cached === undefined || this.cached.generation !== this.scratch.generation) {
      const { ctx, component, config, params, weights, scratch, ropeTable, embed, pool } = this
      this.cached = { encode: encoderPlan({ ctx, component, config, params, weights, scratch, ropeTable, embed, pool }), generation: scratch.generation }
    }
    return this.cached.encode
  }

  private async pass (input: EncoderInput, signal?: AbortSignal): Promise<EncoderOutput> {
    const label = `${this.component} ${stageLabel(this.units)}`
    if (this.closed) throw new StageClosedError(`stage ${label} is closed`)
    signal?.throwIfAborted()
    const checked = checkEncoderInput({ model: this.model, component: this.component, config: this.config, embed: this.embed, label }, input)
    const { ctx, scratch } = this
    const { n } = checked
    const { dim } = this.config
    ctx.checkAlive()
    const values = await ctx.guarded('encoder forward', async () => {
      scratch.ensure(n)
      const plan = this.plan()
      const step = { n, start: 0, rows: 0, k: 0 }
      this.params.write(step)
      this.upload(checked)
      // what leaves the stage: the residual stream, the encoder's memory, or a tower's embedding
      const [out, count] = !this.pool ? [scratch.x, n * dim] : this.component === 'encoder' ? [scratch.xb, n * dim] : [scratch.embedding, this.weights.proj!.rows]
      const staging = this.readback.ensure(count * 4)
      const encoder = ctx.device.createCommandEncoder()
      const pass = encoder.beginComputePass()
      plan(pass, step)
      pass.end()
      encoder.copyBufferToBuffer(out, 0, staging, 0, count * 4)
      ctx.device.queue.submit([encoder.finish()])
      return new Float32Array(await this.readback.read(count * 4))
    })
    signal?.throwIfAborted()
    if (!this.pool || this.component === 'encoder') return { hidden: roundActivations(values, this.activations), n }
    return { embedding: values }
  }

  /** The checked input into the scratch: token ids or patches for the first stage, else hidden states into the residual stream. */
  private upload (input: CheckedEncoderInput): void {
    const { queue } = this.ctx.device
    const data = input.kind === 'tokens' ? input.tokens : input.kind === 'patches' ? input.patches : input.hidden
    queue.writeBuffer(input.kind === 'hidden' ? this.scratch.x : this.scratch.input, 0, data.buffer, data.byteOffset, data.byteLength)
  }
}
