import type { BindingKind, GpuContext } from '../context.ts'
import type { ParamPool } from '../params.ts'
import type { Encode } from './encode.ts'

const KINDS: BindingKind[] = ['uniform', 'read', 'storage']

/** out `(dim)` ← the mean of x's `step.n` rows `(n, dim)` (an image tower's pooling over its patches). */
export function meanKernel (ctx: GpuContext, pool: ParamPool, x: GPUBuffer, out: GPUBuffer, dim: number): Encode {
  const wg = ctx.tuning.elementwiseWorkgroup
  const pipeline = ctx.pipeline('mean.wgsl', KINDS, {}, { WG: wg })
  const params = pool.slot(`mean|${dim}`, (p, s) => {
    p.u32(0, s.n)
    p.u32(1, dim)
  })
  const bindGroup = ctx.bindGroup(KINDS, [params, x, out], 'mean')
  const [gx, gy] = ctx.grid(Math.ceil(dim / wg))
  return pass => {
    pass.setPipeline(pipeline)
    pass.setBindGroup(0, bindGroup)
    pass.dispatchWorkgroups(gx, gy)
  }
}
