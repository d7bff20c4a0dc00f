import type { BindingKind, GpuContext } from '../context.ts'
import type { GpuMatrix } from '../matrix.ts'
import type { ParamPool } from '../params.ts'
import type { Encode } from './encode.ts'

/** out `(n, dim)` ← rows tokens `(n)` of table `(vocab, dim)`, one pass per row chunk. */
export function embeddingKernel (ctx: GpuContext, pool: ParamPool, table: GpuMatrix, tokens: GPUBuffer, out: GPUBuffer): Encode {
  const kinds: BindingKind[] = ['uniform', 'read', 'storage', 'read']
  if (table.chunks[0].scales !== undefined) kinds.push('read')
  const wg = ctx.tuning.elementwiseWorkgroup
  const pipeline = ctx.pipeline('embedding.wgsl', kinds, { WDTYPE: table.dtype.toLowerCase() }, { WG: wg })
  const dim = table.cols
  const parts = table.chunks.map(chunk => {
    const params = pool.slot(`embedding|${dim}|${table.units}|${chunk.row0}|${chunk.rows}`, (p, s) => {
      p.u32(0, s.n)
      p.u32(1, dim)
      p.u32(2, table.units)
      p.u32(3, chunk.row0)
      p.u32(4, chunk.rows)
    })
    const resources = [params, tokens, out, chunk.data]
    if (chunk.scales !== undefined) resources.push(chunk.scales)
    return ctx.bindGroup(kinds, resources, `embedding ${table.name}`)
  })
  return (pass, step) => {
    pass.setPipeline(pipeline)
    const [x, y] = ctx.grid(Math.ceil(step.n * dim / wg))
    for (const bindGroup of parts) {
      pass.setBindGroup(0, bindGroup)
      pass.dispatchWorkgroups(x, y)
    }
  }
}
