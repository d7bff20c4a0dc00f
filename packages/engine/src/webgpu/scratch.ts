import type { ModelConfig } from '@shardmesh/model'
import type { GpuContext } from './context.ts'

/** Largest top-k the GPU ranks; sampling with a larger k ranks the read-back logits in JS. */
export const MAX_GPU_TOP_K = 256

/** Most positions in one submission; longer inputs run in consecutive batches (same bits). */
export const MAX_BATCH = 128

/**
 * Activation buffers of a stage for up to `capacity` positions, shared by its sessions
 * (their forward passes are serialized). Grown by doubling; `generation` changes with them.
 */
export class Scratch {
  capacity = 0
  generation = 0
  x!: GPUBuffer // (n, dim) residual stream
  xb!: GPUBuffer // (n, dim) normed
  xb2!: GPUBuffer // (n, dim) block output
  q!: GPUBuffer // (n, nHeads*headDim)
  att!: GPUBuffer // (n, nHeads*headDim)
  h1!: GPUBuffer // (n, hidden)
  h3!: GPUBuffer // (n, hidden)
  tokens!: GPUBuffer // (n) u32
  normed!: GPUBuffer // (n, dim) final norm (head)
  logits!: GPUBuffer // (n, vocab) (head)
  topk!: GPUBuffer // (MAX_GPU_TOP_K) of (index, value bits)
  private readonly ctx: GpuContext
  private readonly config: ModelConfig
  private readonly head: boolean

  constructor (ctx: GpuContext, config: ModelConfig, head: boolean) {
    this.ctx = ctx
    this.config = config
    this.head = head
  }

  ensure (n: number): void {
    if (n <= this.capacity) return
    const cap = Math.min(this.config.contextLength, MAX_BATCH, Math.max(n, this.capacity * 2, 8))
    const { dim, hiddenDim, nHeads, headDim, vocabSize } = this.config
    const f32 = (values: number, label: string): GPUBuffer => this.ctx.storage(values * 4, label)
    this.destroy()
    this.x = f32(cap * dim, 'x')
    this.xb = f32(cap * dim, 'xb')
    this.xb2 = f32(cap * dim, 'xb2')
    this.q = f32(cap * nHeads * headDim, 'q')
    this.att = f32(cap * nHeads * headDim, 'att')
    this.h1 = f32(cap * hiddenDim, 'h1')
    this.h3 = f32(cap * hiddenDim, 'h3')
    this.tokens = f32(cap, 'tokens')
    this.normed = f32(this.head ? cap * dim : 1, 'normed')
    this.logits = f32(this.head ? cap * vocabSize : 1, 'logits')
    this.topk = f32(this.head ? MAX_GPU_TOP_K * 2 : 1, 'topk')
    this.capacity = cap
    this.generation++
  }

  destroy (): void {
    if (this.capacity === 0) return
    for (const b of [this.x, this.xb, this.xb2, this.q, this.att, this.h1, this.h3, this.tokens, this.normed, this.logits, this.topk]) b.destroy()
    this.capacity = 0
  }
}
