import { BufferUsage } from './constants.ts'
import { paramBlockBytes } from './context.ts'
import type { GpuContext } from './context.ts'

/** What changes between forward passes of a stage; every kernel's parameters derive from it. */
export interface Step {
  /** Positions in this pass. */
  n: number
  /** Position of the first. */
  start: number
  /** Positions whose logits the head computes (1, or n with allLogits). */
  rows: number
  /** Candidates the top-k kernel returns (1 = greedy). */
  k: number
}

/** Writes one kernel's Params struct: `u32(i, v)` / `f32(i, v)` set word i. */
export interface ParamWriter {
  u32: (word: number, value: number) => void
  f32: (word: number, value: number) => void
}

export type ParamFill = (w: ParamWriter, step: Step) => void

/**
 * The uniform parameters of a stage's kernels: one block per distinct (kernel, shape), all
 * in one buffer that a single writeBuffer refreshes before each forward pass. Every layer's
 * kernels share the blocks of their shapes, so a pass writes a few hundred bytes.
 */
export class ParamPool {
  private readonly ctx: GpuContext
  private readonly blockBytes: number
  private readonly capacity: number
  private readonly fills: ParamFill[] = []
  private readonly keys = new Map<string, number>()
  private readonly data: ArrayBuffer
  private readonly u32: Uint32Array
  private readonly f32: Float32Array
  private base = 0
  private readonly writer: ParamWriter = {
    u32: (word, value) => { this.u32[this.base + word] = value },
    f32: (word, value) => { this.f32[this.base + word] = value }
  }

  readonly buffer: GPUBuffer

  constructor (ctx: GpuContext, capacity = 128) {
    this.ctx = ctx
    this.blockBytes = paramBlockBytes(ctx.device)
    this.capacity = capacity
    this.data = new ArrayBuffer(capacity * this.blockBytes)
    this.u32 = new Uint32Array(this.data)
    this.f32 = new Float32Array(this.data)
    this.buffer = ctx.buffer(this.data.byteLength, BufferUsage.UNIFORM | BufferUsage.COPY_DST, 'params')
  }

  /** The block for `key`, created with `fill` the first time; equal keys must mean equal fills. */
  slot (key: string, fill: ParamFill): GPUBufferBinding {
    let index = this.keys.get(key)
    if (index === undefined) {
      index = this.fills.length
      if (index >= this.capacity) throw new RangeError(`more than ${this.capacity} distinct kernel parameter blocks`)
      this.fills.push(fill)
      this.keys.set(key, index)
    }
    return { buffer: this.buffer, offset: index * this.blockBytes, size: this.blockBytes }
  }

  /** Fill every block for `step` and upload them (ordered before the next submit). */
  write (step: Step): void {
    const words = this.blockBytes / 4
    for (let i = 0; i < this.fills.length; i++) {
      this.base = i * words
      this.fills[i](this.writer, step)
    }
    this.ctx.device.queue.writeBuffer(this.buffer, 0, this.data, 0, this.fills.length * this.blockBytes)
  }

  destroy (): void {
    this.buffer.destroy()
  }
}
