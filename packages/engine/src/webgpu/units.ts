import type { ModelConfig, RopeLayout } from '@shardmesh/model'
import type { GpuContext } from './context.ts'
import { attentionKernel } from './kernels/attention.ts'
import type { AttentionInit } from './kernels/attention.ts'
import { addKernel, swigluKernel } from './kernels/elementwise.ts'
import type { Encode } from './kernels/encode.ts'
import { matmulKernel } from './kernels/matmul.ts'
import type { MatmulInit } from './kernels/matmul.ts'
import { rmsnormKernel } from './kernels/rmsnorm.ts'
import { ropeKernel } from './kernels/rope.ts'
import type { GpuCrossWeights } from './cross-attention.ts'
import type { ParamPool } from './params.ts'
import type { GpuAttentionWeights, GpuFfnWeights } from './weights.ts'

/** The shapes a block's math needs: a Llama layer's, a decoder's or an encoder component's. */
export type BlockShape = Pick<ModelConfig, 'dim' | 'hiddenDim' | 'nHeads' | 'nKvHeads' | 'headDim' | 'normEps'>

/** Activation buffers of a pass that the units read and write (a stage's scratch). */
export interface BlockBuffers {
  x: GPUBuffer // (n, dim) residual stream
  xb: GPUBuffer // (n, dim) normed
  xb2: GPUBuffer // (n, dim) unit output
  q: GPUBuffer // (n, nHeads*headDim)
  att: GPUBuffer // (n, nHeads*headDim)
  h1: GPUBuffer // (n, hidden)
  h3: GPUBuffer // (n, hidden)
}

export interface SelfAttentionInit {
  /** Keys `(positions, kvDim)`: a session's KV cache layer, or the pass's own keys. */
  keys: GPUBuffer
  values: GPUBuffer
  /** Where the pass's k and v rows land in `keys` and `values`. */
  into: Pick<MatmulInit, 'key' | 'yStride' | 'yOffset'>
  /** (positions, headDim/2) of (cos, sin). */
  ropeTable: GPUBuffer
  ropeLayout: RopeLayout
  /** Unmasked attention over the keys it gives (an encoder's bidirectional layers). @default causal */
  mask?: AttentionInit
}

const inOrder = (parts: Encode[]): Encode => (pass, step) => { for (const part of parts) part(pass, step) }

/**
 * Unit 2l: x += wo · attention(rope(wq · norm(x)), rope(wk · norm(x)), wv · norm(x)), the
 * keys and values of the pass written into `init.keys`/`init.values` first.
 */
export function attentionUnit (ctx: GpuContext, pool: ParamPool, c: BlockShape, w: GpuAttentionWeights, b: BlockBuffers, init: SelfAttentionInit): Encode {
  const { dim, nHeads, nKvHeads, headDim, normEps: eps } = c
  return inOrder([
    rmsnormKernel(ctx, pool, b.x, w.norm, b.xb, { key: 'layer', dim, eps }), // (n, dim)
    matmulKernel(ctx, pool, w.wq, b.xb, b.q, { key: 'q' }), // (n, qDim)
    matmulKernel(ctx, pool, w.wk, b.xb, init.keys, init.into), // rows start.. of (positions, kvDim)
    matmulKernel(ctx, pool, w.wv, b.xb, init.values, init.into),
    ropeKernel(ctx, pool, b.q, init.keys, init.ropeTable, { nHeads, nKvHeads, headDim, layout: init.ropeLayout }),
    attentionKernel(ctx, pool, b.q, init.keys, init.values, b.att, { nHeads, nKvHeads, headDim }, init.mask), // (n, qDim)
    matmulKernel(ctx, pool, w.wo, b.att, b.xb2, { key: 'o' }), // (n, dim)
    addKernel(ctx, pool, b.x, b.xb2, dim)
  ])
}

/** Unit 2l + 1: x += w2 · (silu(w1 · norm(x)) ⊙ w3 · norm(x)). */
export function feedForwardUnit (ctx: GpuContext, pool: ParamPool, c: BlockShape, w: GpuFfnWeights, b: BlockBuffers): Encode {
  const { dim, hiddenDim, normEps: eps } = c
  return inOrder([
    rmsnormKernel(ctx, pool, b.x, w.norm, b.xb, { key: 'layer', dim, eps }),
    matmulKernel(ctx, pool, w.w1, b.xb, b.h1, { key: 'up' }), // (n, hidden)
    matmulKernel(ctx, pool, w.w3, b.xb, b.h3, { key: 'up' }), // (n, hidden)
    swigluKernel(ctx, pool, b.h1, b.h3, hiddenDim),
    matmulKernel(ctx, pool, w.w2, b.h1, b.xb2, { key: 'down' }), // (n, dim)
    addKernel(ctx, pool, b.x, b.xb2, dim)
  ])
}

/**
 * A decoder layer's cross-attention, after its self-attention in unit 2l:
 * x += cross_o · attention(cross_q · norm(x; cross_norm), K, V) over every position of the
 * session's memory (`step.memory` of them), no RoPE, no mask — the CPU's order.
 */
export function crossAttentionUnit (ctx: GpuContext, pool: ParamPool, c: BlockShape, w: GpuCrossWeights, b: BlockBuffers, keys: GPUBuffer, values: GPUBuffer): Encode {
  const { dim, nHeads, nKvHeads, headDim, normEps: eps } = c
  return inOrder([
    rmsnormKernel(ctx, pool, b.x, w.norm, b.xb, { key: 'layer', dim, eps }), // (n, dim)
    matmulKernel(ctx, pool, w.wq, b.xb, b.q, { key: 'q' }), // (n, qDim)
    attentionKernel(ctx, pool, b.q, keys, values, b.att, { nHeads, nKvHeads, headDim }, { key: 'cross', keys: st => st.memory ?? 0 }), // (n, qDim)
    matmulKernel(ctx, pool, w.wo, b.att, b.xb2, { key: 'o' }), // (n, dim)
    addKernel(ctx, pool, b.x, b.xb2, dim)
  ])
}
