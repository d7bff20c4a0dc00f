import type { RopeLayout } from '@shardmesh/model'
import type { BindingKind, GpuContext } from '../context.ts'
import type { ParamPool } from '../params.ts'
import type { Encode } from './encode.ts'

const KINDS: BindingKind[] = ['uniform', 'storage', 'storage', 'read']

export interface RopeShape {
  nHeads: number
  nKvHeads: number
  headDim: number
  layout: RopeLayout
}

/**
 * RoPE in place on q `(n, nHeads, headDim)` and on the keys of positions
 * `[start, start + n)` in k `(positions, nKvHeads · headDim)`; table `(positions, headDim/2)`
 * of (cos, sin).
 */
export function ropeKernel (ctx: GpuContext, pool: ParamPool, q: GPUBuffer, k: GPUBuffer, table: GPUBuffer, shape: RopeShape): Encode {
  const wg = ctx.tuning.elementwiseWorkgroup
  const pipeline = ctx.pipeline('rope.wgsl', KINDS, {}, { WG: wg })
  const { nHeads, nKvHeads, headDim } = shape
  const pairs = (nHeads + nKvHeads) * (headDim / 2)
  const params = pool.slot(`rope|${nHeads}|${nKvHeads}|${headDim}|${shape.layout}`, (p, s) => {
    p.u32(0, s.n)
    p.u32(1, s.start)
    p.u32(2, nHeads)
    p.u32(3, nKvHeads)
    p.u32(4, headDim)
    p.u32(5, shape.layout === 'interleaved' ? 1 : 0)
    p.u32(6, s.n * pairs)
  })
  const bindGroup = ctx.bindGroup(KINDS, [params, q, k, table], 'rope')
  return (pass, step) => {
    pass.setPipeline(pipeline)
    pass.setBindGroup(0, bindGroup)
    const [x, y] = ctx.grid(Math.ceil(step.n * pairs / wg))
    pass.dispatchWorkgroups(x, y)
  }
}
