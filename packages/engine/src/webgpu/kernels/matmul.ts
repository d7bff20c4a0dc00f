import type { BindingKind, GpuContext } from '../context.ts'
import type { GpuMatrix } from '../matrix.ts'
import type { ParamPool, Step } from '../params.ts'
import type { Encode } from './encode.ts'

export interface MatmulInit {
  /** Distinguishes parameter blocks whose `n` or `yOffset` differ for the same shape. */
  key: string
  /** Positions of x multiplied in a step. @default step.n */
  n?: (step: Step) => number
  /** Elements between positions in y. @default w.rows */
  yStride?: number
  /** Element of y that receives (position 0, row 0). @default 0 */
  yOffset?: (step: Step) => number
}

function kinds (w: GpuMatrix): BindingKind[] {
  const base: BindingKind[] = ['uniform', 'read', 'storage', 'read']
  return w.chunks[0].scales === undefined ? base : [...base, 'read']
}

/** The matmul pipeline for `w` with `tileN` positions per workgroup. */
export function matmulPipeline (ctx: GpuContext, w: GpuMatrix, tileN: number): GPUComputePipeline {
  const t = ctx.tuning
  return ctx.pipeline('matmul.wgsl', kinds(w), {
    WDTYPE: w.dtype.toLowerCase(),
    ROWS: t.matmulRows,
    TILE_N: tileN,
    X_VEC4: w.cols % 4 === 0,
    SUBGROUPS: t.subgroups
  }, { LANES: t.matmulLanes })
}

/**
 * y `(n, yStride)` at yOffset ← x `(n, w.cols)` · wᵀ, one dispatch per row chunk of w.
 * Decode (n = 1) and prefill use pipelines that differ only in positions per workgroup,
 * which leaves every dot product's summation order the same.
 */
export function matmulKernel (ctx: GpuContext, pool: ParamPool, w: GpuMatrix, x: GPUBuffer, y: GPUBuffer, init: MatmulInit): Encode {
  const nOf = init.n ?? ((s: Step) => s.n)
  const yStride = init.yStride ?? w.rows
  const yOffset = init.yOffset ?? (() => 0)
  const decode = matmulPipeline(ctx, w, 1)
  const tile = ctx.tuning.matmulTile
  const prefill = matmulPipeline(ctx, w, tile)
  const rowsPerGroup = ctx.tuning.matmulRows
  const parts = w.chunks.map(chunk => {
    const params = pool.slot(`matmul|${init.key}|${w.cols}|${w.units}|${yStride}|${chunk.rows}|${chunk.row0}`, (p, s) => {
      p.u32(0, chunk.rows)
      p.u32(1, w.cols)
      p.u32(2, w.units)
      p.u32(3, nOf(s))
      p.u32(4, yStride)
      p.u32(5, yOffset(s) + chunk.row0)
    })
    const resources = [params, x, y, chunk.data]
    if (chunk.scales !== undefined) resources.push(chunk.scales)
    const bindGroup = ctx.bindGroup(kinds(w), resources, `matmul ${w.name}`)
    const [gx, gz] = ctx.grid(Math.ceil(chunk.rows / rowsPerGroup))
    return (pass: GPUComputePassEncoder, step: Step) => {
      const n = nOf(step)
      pass.setPipeline(n === 1 ? decode : prefill)
      pass.setBindGroup(0, bindGroup)
      pass.dispatchWorkgroups(gx, Math.ceil(n / (n === 1 ? 1 : tile)), gz)
    }
  })
  return (pass, step) => { for (const part of parts) part(pass, step) }
}
