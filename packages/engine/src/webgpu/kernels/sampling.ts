import type { BindingKind, GpuContext } from '../context.ts'
import type { ParamPool, Step } from '../params.ts'
import type { Encode } from './encode.ts'

const TOPK: BindingKind[] = ['uniform', 'read', 'storage']

export interface TopkInit {
  key: string
  /** Logits per row. */
  len: number
  /** First logit of the row ranked in a step. */
  offset: (step: Step) => number
}

/**
 * out `(k)` of (index, value bits) ← the k largest of logits[offset, offset + len), larger
 * value first, lower index first on ties; k = step.k (1: argmax).
 */
export function topkKernel (ctx: GpuContext, pool: ParamPool, logits: GPUBuffer, out: GPUBuffer, init: TopkInit): Encode {
  const pipeline = ctx.pipeline('topk.wgsl', TOPK, {}, { WG: ctx.tuning.reduceWorkgroup })
  const params = pool.slot(`topk|${init.key}|${init.len}`, (p, s) => {
    p.u32(0, init.len)
    p.u32(1, Math.min(s.k, init.len))
    p.u32(2, init.offset(s))
  })
  const bindGroup = ctx.bindGroup(TOPK, [params, logits, out], 'topk')
  return pass => {
    pass.setPipeline(pipeline)
    pass.setBindGroup(0, bindGroup)
    pass.dispatchWorkgroups(1)
  }
}

/** out `(n, len)` ← softmax of x `(n, len)` rows at `temperature`. */
export function softmaxKernel (ctx: GpuContext, pool: ParamPool, x: GPUBuffer, out: GPUBuffer, len: number, temperature: number): Encode {
  const kinds: BindingKind[] = ['uniform', 'read', 'storage']
  const pipeline = ctx.pipeline('softmax.wgsl', kinds, {}, { WG: ctx.tuning.reduceWorkgroup })
  const params = pool.slot(`softmax|${len}|${temperature}`, p => {
    p.u32(0, len)
    p.f32(1, 1 / temperature)
  })
  const bindGroup = ctx.bindGroup(kinds, [params, x, out], 'softmax')
  return (pass, step) => {
    pass.setPipeline(pipeline)
    pass.setBindGroup(0, bindGroup)
    pass.dispatchWorkgroups(step.n)
  }
}
