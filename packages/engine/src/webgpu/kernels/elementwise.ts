import type { BindingKind, GpuContext } from '../context.ts'
import type { ParamPool, Step } from '../params.ts'
import type { Encode } from './encode.ts'

const KINDS: BindingKind[] = ['uniform', 'storage', 'read']

/** A kernel over `len(step)` values: `a op= b` (add.wgsl: a += b; swiglu.wgsl: a = silu(a)·b). */
function elementwise (file: 'add.wgsl' | 'swiglu.wgsl', ctx: GpuContext, pool: ParamPool, a: GPUBuffer, b: GPUBuffer, width: number): Encode {
  const wg = ctx.tuning.elementwiseWorkgroup
  const pipeline = ctx.pipeline(file, KINDS, {}, { WG: wg })
  const params = pool.slot(`${file}|${width}`, (p, s: Step) => { p.u32(0, s.n * width) })
  const bindGroup = ctx.bindGroup(KINDS, [params, a, b], file)
  return (pass, step) => {
    pass.setPipeline(pipeline)
    pass.setBindGroup(0, bindGroup)
    const [x, y] = ctx.grid(Math.ceil(step.n * width / wg))
    pass.dispatchWorkgroups(x, y)
  }
}

/** x `(n, width)` += y `(n, width)`. */
export function addKernel (ctx: GpuContext, pool: ParamPool, x: GPUBuffer, y: GPUBuffer, width: number): Encode {
  return elementwise('add.wgsl', ctx, pool, x, y, width)
}

/** gate `(n, width)` = silu(gate) ⊙ up `(n, width)`. */
export function swigluKernel (ctx: GpuContext, pool: ParamPool, gate: GPUBuffer, up: GPUBuffer, width: number): Encode {
  return elementwise('swiglu.wgsl', ctx, pool, gate, up, width)
}
