import type { ModelConfig } from '@shardmesh/model'
import type { GpuContext } from './context.ts'
import { embeddingKernel } from './kernels/embedding.ts'
import type { Encode } from './kernels/encode.ts'
import { matmulKernel } from './kernels/matmul.ts'
import { rmsnormKernel } from './kernels/rmsnorm.ts'
import { topkKernel } from './kernels/sampling.ts'
import { attentionUnit, crossAttentionUnit, feedForwardUnit } from './units.ts'
import type { GpuCrossBuffers, GpuCrossWeights } from './cross-attention.ts'
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
  /** A decoder's cross-attention weights, one per layer of `kvLayers`. */
  cross?: { weights: GpuCrossWeights[] }
}

/**
 * Every dispatch of one forward pass of a stage for one session (its KV cache and, in a
 * decoder, its memory's cross keys and values), in model order over the stage's units — the
 * GPU twin of the CPU stage's forward(). Bind groups are made here once and reused until the
 * scratch, the KV cache or the memory is reallocated.
 */
export function forwardPlan (s: PlanInputs, kv: GpuKvCache, memory?: GpuCrossBuffers): Encode {
  const { ctx, config, pool, weights, scratch: b } = s
  const { dim, nKvHeads, headDim, normEps: eps, vocabSize } = config
  const kvDim = nKvHeads * headDim
  const parts: Encode[] = []
  if (s.embed) parts.push(embeddingKernel(ctx, pool, weights.embedding!, b.tokens, b.x)) // (n, dim)
  for (const { layer, attention: wa, ffn: wf } of weights.layers) {
    if (wa !== undefined) {
      // attention unit (2l): k and v of the new positions land in the session's KV cache
      const c = layer - s.kvLayers[0]
      parts.push(attentionUnit(ctx, pool, config, wa, b, {
        keys: kv.keys[c], // (positions, kvDim)
        values: kv.values[c],
        into: { key: 'kv', yStride: kvDim, yOffset: (st: { start: number }) => st.start * kvDim },
        ropeTable: s.ropeTable,
        ropeLayout: config.ropeLayout
      }))
      // a decoder's cross-attention belongs to the same unit, after the self-attention
      if (s.cross !== undefined) parts.push(crossAttentionUnit(ctx, pool, config, s.cross.weights[c], b, memory!.keys[c], memory!.values[c]))
    }
    if (wf !== undefined) parts.push(feedForwardUnit(ctx, pool, config, wf, b)) // feed-forward unit (2l + 1)
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
