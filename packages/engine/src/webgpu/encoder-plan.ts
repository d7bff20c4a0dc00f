import type { EncoderConfig } from '@shardmesh/model'
import type { EncoderComponent } from '../components/types.ts'
import type { GpuContext } from './context.ts'
import { embeddingKernel } from './kernels/embedding.ts'
import type { Encode } from './kernels/encode.ts'
import { matmulKernel } from './kernels/matmul.ts'
import { meanKernel } from './kernels/mean.ts'
import { rmsnormKernel } from './kernels/rmsnorm.ts'
import type { ParamPool } from './params.ts'
import { attentionUnit, feedForwardUnit } from './units.ts'
import type { GpuEncoderWeights } from './encoder-weights.ts'

/**
 * Activation buffers of an encoder stage for up to `capacity` positions (one whole input per
 * pass), grown by doubling up to what the component takes; `generation` changes with them.
 */
export class EncoderScratch {
  capacity = 0
  generation = 0
  input!: GPUBuffer // (n) u32 token ids, or (n, patchSize²·channels) patches
  x!: GPUBuffer // (n, dim) residual stream
  xb!: GPUBuffer // (n, dim) normed; after the last layer the final norm
  xb2!: GPUBuffer // (n, dim) unit output
  q!: GPUBuffer // (n, nHeads*headDim)
  k!: GPUBuffer // (n, nKvHeads*headDim) the pass's keys
  v!: GPUBuffer // (n, nKvHeads*headDim)
  att!: GPUBuffer // (n, nHeads*headDim)
  h1!: GPUBuffer // (n, hidden)
  h3!: GPUBuffer // (n, hidden)
  pooled!: GPUBuffer // (dim) a tower's pooled row
  embedding!: GPUBuffer // (embedDim) a tower's embedding
  private readonly ctx: GpuContext
  private readonly config: EncoderConfig
  /** Values per input position: 1 token id, or a patch's pixels. */
  private readonly inputWidth: number
  private readonly embedDim: number

  constructor (ctx: GpuContext, config: EncoderConfig, inputWidth: number, embedDim: number) {
    this.ctx = ctx
    this.config = config
    this.inputWidth = inputWidth
    this.embedDim = embedDim
  }

  ensure (n: number): void {
    if (n <= this.capacity) return
    const cap = Math.max(n, Math.min(this.config.contextLength, Math.max(this.capacity * 2, 8)))
    const { dim, hiddenDim, nHeads, nKvHeads, headDim } = this.config
    const f32 = (values: number, label: string): GPUBuffer => this.ctx.storage(values * 4, label)
    this.destroy()
    this.input = f32(cap * this.inputWidth, 'input')
    this.x = f32(cap * dim, 'x')
    this.xb = f32(cap * dim, 'xb')
    this.xb2 = f32(cap * dim, 'xb2')
    this.q = f32(cap * nHeads * headDim, 'q')
    this.k = f32(cap * nKvHeads * headDim, 'k')
    this.v = f32(cap * nKvHeads * headDim, 'v')
    this.att = f32(cap * nHeads * headDim, 'att')
    this.h1 = f32(cap * hiddenDim, 'h1')
    this.h3 = f32(cap * hiddenDim, 'h3')
    this.pooled = f32(dim, 'pooled')
    this.embedding = f32(Math.max(1, this.embedDim), 'embedding')
    this.capacity = cap
    this.generation++
  }

  destroy (): void {
    if (this.capacity === 0) return
    for (const b of [this.input, this.x, this.xb, this.xb2, this.q, this.k, this.v, this.att, this.h1, this.h3, this.pooled, this.embedding]) b.destroy()
    this.capacity = 0
  }
}

export interface EncoderPlanInputs {
  ctx: GpuContext
  component: EncoderComponent
  config: EncoderConfig
  params: ParamPool
  weights: GpuEncoderWeights
  scratch: EncoderScratch
  /** (positions, headDim/2) of (cos, sin). */
  ropeTable: GPUBuffer
  embed: boolean
  pool: boolean
}

/**
 * Every dispatch of one encoder pass over n positions, in the component's order — the GPU
 * twin of the CPU encoder stage's pass: embed (tokens or patches), each layer's halves with
 * RoPE at positions 0..n-1 and a causal or bidirectional mask, then at the component's end
 * the final norm and, for a tower, pooling and projection.
 */
export function encoderPlan (s: EncoderPlanInputs): Encode {
  const { ctx, config, params, weights: w, scratch: b } = s
  const { dim, normEps: eps } = config
  const parts: Encode[] = []
  if (s.embed) {
    if (s.component === 'image') parts.push(matmulKernel(ctx, params, w.embedding!, b.input, b.x, { key: 'patches' })) // (patches, dim)
    else parts.push(embeddingKernel(ctx, params, w.embedding!, b.input, b.x)) // (n, dim)
  }
  // the bidirectional mask attends to all n keys of the pass; the causal one to keys 0..t
  const mask = config.causal ? undefined : { key: 'bidirectional', keys: (st: { n: number }) => st.n }
  for (const { attention: wa, ffn: wf } of w.layers) {
    if (wa !== undefined) {
      parts.push(attentionUnit(ctx, params, config, wa, b, { keys: b.k, values: b.v, into: { key: 'encoder' }, ropeTable: s.ropeTable, ropeLayout: 'half', mask }))
    }
    if (wf !== undefined) parts.push(feedForwardUnit(ctx, params, config, wf, b))
  }
  if (s.pool) {
    if (s.component === 'text') {
      // the last position, normed, projected
      parts.push(rmsnormKernel(ctx, params, b.x, w.norm!, b.pooled, { key: 'pool', dim, eps, n: () => 1, row0: st => st.n - 1 })) // (dim)
    } else {
      parts.push(rmsnormKernel(ctx, params, b.x, w.norm!, b.xb, { key: 'final', dim, eps })) // (n, dim): the encoder's memory
      if (s.component === 'image') parts.push(meanKernel(ctx, params, b.xb, b.pooled, dim)) // (dim): mean over the patches
    }
    if (w.proj !== undefined) parts.push(matmulKernel(ctx, params, w.proj, b.pooled, b.embedding, { key: 'proj', n: () => 1 })) // (embedDim)
  }
  return (pass, step) => { for (const part of parts) part(pass, step) }
}
