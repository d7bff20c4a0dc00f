import type { BindingKind, GpuContext } from '../context.ts'
import type { ParamPool, Step } from '../params.ts'
import type { Encode } from './encode.ts'

const KINDS: BindingKind[] = ['uniform', 'read', 'read', 'storage']

export interface RmsnormInit {
  key: string
  dim: number
  eps: number
  /** Rows normalized in a step. @default step.n */
  n?: (step: Step) => number
  /** First row of x read. @default 0 */
  row0?: (step: Step) => number
}

/** out `(n, dim)` ← RMSNorm of x rows `[row0, row0 + n)` `(·, dim)` scaled by w `(dim)`. */
export function rmsnormKernel (ctx: GpuContext, pool: ParamPool, x: GPUBuffer, w: GPUBuffer, out: GPUBuffer, init: RmsnormInit): Encode {
  const nOf = init.n ?? ((s: Step) => s.n)
  const row0 = init.row0 ?? (() => 0)
  const pipeline = ctx.pipeline('rmsnorm.wgsl', KINDS, {}, { WG: ctx.tuning.reduceWorkgroup })
  const params = pool.slot(`rmsnorm|${init.key}|${init.dim}|${init.eps}`, (p, s) => {
    p.u32(0, init.dim)
    p.u32(1, nOf(s))
    p.u32(2, row0(s))
    p.f32(3, init.eps)
  })
  const bindGroup = ctx.bindGroup(KINDS, [params, x, w, out], 'rmsnorm')
  return (pass, step) => {
    pass.setPipeline(pipeline)
    pass.setBindGroup(0, bindGroup)
    pass.dispatchWorkgroups(nOf(step))
  }
}
