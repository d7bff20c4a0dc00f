import type { BindingKind, GpuContext } from '../context.ts'
import type { ParamPool, Step } from '../params.ts'
import type { Encode } from './encode.ts'

const KINDS: BindingKind[] = ['uniform', 'read', 'read', 'read', 'storage']

export interface AttentionShape {
  nHeads: number
  nKvHeads: number
  headDim: number
}

export interface AttentionInit {
  /** Distinguishes parameter blocks whose `keys` differ for the same shape. */
  key: string
  /** Keys every row attends to, unmasked (bidirectional, cross-attention); 0 is causal. */
  keys: (step: Step) => number
}

const CAUSAL: AttentionInit = { key: 'causal', keys: () => 0 }

/**
 * Attention of q `(n, nHeads, headDim)` over k, v `(positions, nKvHeads · headDim)` into out
 * `(n, nHeads, headDim)`: causal at positions `[start, start + n)` over a KV cache, or with
 * `init.keys` every row over keys `[0, keys)` with no mask.
 */
export function attentionKernel (ctx: GpuContext, pool: ParamPool, q: GPUBuffer, k: GPUBuffer, v: GPUBuffer, out: GPUBuffer, shape: AttentionShape, init: AttentionInit = CAUSAL): Encode {
  const { nHeads, nKvHeads, headDim } = shape
  const wg = ctx.tuning.attentionWorkgroup
  const pipeline = ctx.pipeline('attention.wgsl', KINDS, { HEAD_DIM: headDim, DPT: Math.ceil(headDim / wg) }, { WG: wg })
  const params = pool.slot(`attention|${init.key}|${nHeads}|${nKvHeads}|${headDim}`, (p, s) => {
    p.u32(0, s.n)
    p.u32(1, s.start)
    p.u32(2, nHeads)
    p.u32(3, nHeads / nKvHeads)
    p.u32(4, headDim)
    p.u32(5, nKvHeads * headDim)
    p.f32(6, 1 / Math.sqrt(headDim))
    p.u32(7, init.keys(s))
  })
  const bindGroup = ctx.bindGroup(KINDS, [params, q, k, v, out], 'attention')
  return (pass, step) => {
    pass.setPipeline(pipeline)
    pass.setBindGroup(0, bindGroup)
    pass.dispatchWorkgroups(nHeads, step.n)
  }
}
