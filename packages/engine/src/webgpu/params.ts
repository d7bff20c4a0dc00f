import { BufferUsage } from './constants.ts'
import { paramBlockBytes } from './context.ts'
import type { GpuContext } from './context.ts'

/** What changes between forward passes of a stage; every kernel's parameters derive from it. */
export interface Step {
  /** Positions in this pass. */
  n: number
  /** Position of the first. */
  start: number
  /** Positions whose logits the head computes (1, or n with allLogits; 0 skips the head). */
  rows: number
  /** Candidates the top-k kernel returns (1 = greedy; 0 skips it). */
  k: number
  /** Positions of the session's memory (decoder stages with cross-attention). @default 0 */
  memory?: number
}

/** Writes one kernel's Params struct: `u32(i, v)` / `f32(i, v)` set word i. */
export interface ParamWriter {
  u32: (word: number, value: number) => void
  f32: (word: number, value: number) => void
}

export type ParamFill = (w: ParamWriter, step: Step) => void

interface Page {
  buffer: GPUBuffer
  data: ArrayBuffer
  u32: Uint32Array
  f32: Float32Array
}

/**
 * The uniform parameters of a stage's kernels: one block per distinct (kernel, shape), in
 * pages of `perPage` blocks that one writeBuffer each refreshes before a forward pass.
 * Every layer's kernels share the blocks of their shapes, so a pass writes a few hundred
 * bytes. Pages never move, so bind groups made with a slot stay valid.
 */
export class ParamPool {
  private readonly ctx: GpuContext
  private readonly blockBytes: number
  private readonly perPage: number
  private readonly fills: ParamFill[] = []
  private readonly keys = new Map<string, number>()
  private readonly pages: Page[] = []
  private page: Page | undefined
  private base = 0
  private readonly writer: ParamWriter = {
    u32: (word, value) => { this.page!.u32[this.base + word] = value },
    f32: (word, value) => { this.page!.f32[this.base + word] = value }
  }

  constructor (ctx: GpuContext, perPage = 64) {
    this.ctx = ctx
    this.blockBytes = paramBlockBytes(ctx.device)
    this.perPage = perPage
  }

  /** The block for `key`, created with `fill` the first time; equal keys must mean equal fills. */
  slot (key: string, fill: ParamFill): GPUBufferBinding {
    let index = this.keys.get(key)
    if (index === undefined) {
      index = this.fills.length
      this.fills.push(fill)
      this.keys.set(key, index)
    }
    const p = Math.floor(index / this.perPage)
    while (this.pages.length <= p) {
      const data = new ArrayBuffer(this.perPage * this.blockBytes)
      const buffer = this.ctx.buffer(data.byteLength, BufferUsage.UNIFORM | BufferUsage.COPY_DST, `params ${this.pages.length}`)
      this.pages.push({ buffer, data, u32: new Uint32Array(data), f32: new Float32Array(data) })
    }
    return { buffer: this.pages[p].buffer, offset: (index % this.perPage) * this.blockBytes, size: this.blockBytes }
  }

  /** Fill every block for `step` and upload them (ordered before the next submit). */
  write (step: Step): void {
    const words = this.blockBytes / 4
    for (let p = 0; p < this.pages.length; p++) {
      this.page = this.pages[p]
      const used = Math.min(this.perPage, this.fills.length - p * this.perPage)
      for (let i = 0; i < used; i++) {
        this.base = i * words
        this.fills[p * this.perPage + i](this.writer, step)
      }
      this.ctx.device.queue.writeBuffer(this.page.buffer, 0, this.page.data, 0, used * this.blockBytes)
    }
  }

  destroy (): void {
    for (const p of this.pages) p.buffer.destroy()
  }
}
