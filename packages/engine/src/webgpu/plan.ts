import type { ModelConfig } from '@shardmesh/model'
import type { GpuContext } from './context.ts'
import { attentionKernel } from './kernels/attention.ts'
import { addKernel, swigluKernel } from './kernels/elementwise.ts'
import { embeddingKernel } from './kernels/embedding.ts'
import type { Encode } from './kernels/encode.ts'
import { matmulKernel } from './kernels/matmul.ts'
import { rmsnormKernel } from './kernels/rmsnorm.ts'
import { ropeKernel } from './kernels/rope.ts'
import { topkKernel } from './kernels/sampling.ts'
import type { GpuKvCache } from './kv-cache.ts'
import type { ParamPool } from './params.ts'
import type { Scratch } from './scratch.ts'
import type { GpuStageWeights } from './weights.ts'

export interface PlanInputs {
  ctx: GpuContext
  config: ModelConfig
  pool: ParamPool
  weights: GpuStageWeights
  scratch: Scratch
  /** (positions, headDim/2) of (cos, sin). */
  ropeTable: GPUBuffer
  /** Layers whose attention the stage runs; `kv` holds their caches in this order. */
  kvLayers: [number, number]
  embed: boolean
  head: boolean
}

/**
 * Every dispatch of one forward pass of a stage for one session (its KV cache), in model
 * order over the stage's units — the GPU twin of the CPU stage's forward(). Bind groups are
 * made here once and reused until the scratch or the KV cache is reallocated.
 */
export function forwardPlan (s: PlanInputs, kv: GpuKvCache): Encode {
  const { ctx, config, pool, weights, scratch: b } = s
  const { dim, hiddenDim, nHeads, nKvHeads, headDim, normEps: eps, vocabSize } = config
  const kvDim = nKvHeads * headDim
  const parts: Encode[] = []
  if (s.embed) parts.push(embeddingKernel(ctx, pool, weights.embedding!, b.tokens, b.x)) // (n, dim)
  for (const { layer, attention: wa, ffn: wf } of weights.layers) {
    if (wa !== undefined) {
      // attention unit (2l)
      const keys = kv.keys[layer - s.kvLayers[0]] // (positions, kvDim)
      const values = kv.values[layer - s.kvLayers[0]] // (positions, kvDim)
      const intoCache = { key: 'kv', yStride: kvDim, yOffset: (st: { start: number }) => st.start * kvDim }
      parts.push(rmsnormKernel(ctx, pool, b.x, wa.norm, b.xb, { key: 'layer', dim, eps })) // (n, dim)
      parts.push(matmulKernel(ctx, pool, wa.wq, b.xb, b.q, { key: 'q' })) // (n, qDim)
      parts.push(matmulKernel(ctx, pool, wa.wk, b.xb, keys, intoCache)) // rows start.. of (positions, kvDim)
      parts.push(matmulKernel(ctx, pool, wa.wv, b.xb, values, intoCache))
      parts.push(ropeKernel(ctx, pool, b.q, keys, s.ropeTable, { nHeads, nKvHeads, headDim, layout: config.ropeLayout }))
      parts.push(attentionKernel(ctx, pool, b.q, keys, values, b.att, { nHeads, nKvHeads, headDim })) // (n, qDim)
      parts.push(matmulKernel(ctx, pool, wa.wo, b.att, b.xb2, { key: 'o' })) // (n, dim)
      parts.push(addKernel(ctx, pool, b.x, b.xb2, dim))
    }
    if (wf !== undefined) {
      // feed-forward unit (2l + 1)
      parts.push(rmsnormKernel(ctx, pool, b.x, wf.norm, b.xb, { key: 'layer', dim, eps }))
      parts.push(matmulKernel(ctx, pool, wf.w1, b.xb, b.h1, { key: 'up' })) // (n, hidden)
      parts.push(matmulKernel(ctx, pool, wf.w3, b.xb, b.h3, { key: 'up' })) // (n, hidden)
      parts.push(swigluKernel(ctx, pool, b.h1, b.h3, hiddenDim))
      parts.push(matmulKernel(ctx, pool, wf.w2, b.h1, b.xb2, { key: 'down' })) // (n, dim)
      parts.push(addKernel(ctx, pool, b.x, b.xb2, dim))
    }
  }
  if (s.head) {
    // final norm and LM head over the last `rows` positions, top-k of the last one
    const norm = rmsnormKernel(ctx, pool, b.x, weights.norm!, b.normed, { key: 'head', dim, eps, n: st => st.rows, row0: st => st.n - st.rows }) // (rows, dim)
    const logits = matmulKernel(ctx, pool, weights.output!, b.normed, b.logits, { key: 'logits', n: st => st.rows }) // (rows, vocab)
    const topk = topkKernel(ctx, pool, b.logits, b.topk, { key: 'head', len: vocabSize, offset: st => (st.rows - 1) * vocabSize }) // (k)
    parts.push((pass, st) => {
      if (st.rows === 0) return
      norm(pass, st)
      logits(pass, st)
      if (st.k > 0) topk(pass, st)
    })
  }
  return (pass, step) => { for (const part of parts) part(pass, step) }
}
