import type { ModelConfig, Tensor } from '@shardmesh/model'
import { requireTensor } from '../stage-tensors.ts'
import type { TensorSource } from '../types.ts'
import type { GpuContext } from './context.ts'
import type { Encode } from './kernels/encode.ts'
import { matmulKernel } from './kernels/matmul.ts'
import { destroyMatrix, uploadMatrix } from './matrix.ts'
import type { GpuMatrix } from './matrix.ts'
import type { ParamPool } from './params.ts'
import { uploadVector } from './weights.ts'

/** Cross-attention of one decoder layer, run after its self-attention (part of unit 2l). */
export interface GpuCrossWeights {
  norm: GPUBuffer // (dim) f32
  wq: GpuMatrix // (nHeads*headDim, dim)
  wk: GpuMatrix // (nKvHeads*headDim, memoryDim)
  wv: GpuMatrix // (nKvHeads*headDim, memoryDim)
  wo: GpuMatrix // (dim, nHeads*headDim)
}

/** A session's cross keys and values, `(memory positions, kvDim)` per cross-attention layer of the stage. */
export interface GpuCrossBuffers {
  keys: GPUBuffer[]
  values: GPUBuffer[]
}

/** Checks and uploads the cross-attention weights of layers `[l0, l1)` (`layers.l.cross_{norm,q,k,v,o}`); shapes are checked before the first upload. */
export function uploadCrossWeights (ctx: GpuContext, config: ModelConfig, memoryDim: number, tensors: TensorSource, layers: [number, number]): GpuCrossWeights[] {
  const { dim, nHeads, nKvHeads, headDim } = config
  const qDim = nHeads * headDim
  const kvDim = nKvHeads * headDim
  const checked: Array<Record<'norm' | 'q' | 'k' | 'v' | 'o', Tensor>> = []
  for (let l = layers[0]; l < layers[1]; l++) {
    const p = `layers.${l}.cross_`
    checked.push({
      norm: requireTensor(tensors, p + 'norm', [dim]),
      q: requireTensor(tensors, p + 'q', [qDim, dim]),
      k: requireTensor(tensors, p + 'k', [kvDim, memoryDim]),
      v: requireTensor(tensors, p + 'v', [kvDim, memoryDim]),
      o: requireTensor(tensors, p + 'o', [dim, qDim])
    })
  }
  return checked.map(t => ({
    norm: uploadVector(ctx, t.norm),
    wq: uploadMatrix(ctx, t.q),
    wk: uploadMatrix(ctx, t.k),
    wv: uploadMatrix(ctx, t.v),
    wo: uploadMatrix(ctx, t.o)
  }))
}

export function destroyCrossWeights (weights: GpuCrossWeights[]): void {
  for (const w of weights) {
    w.norm.destroy()
    for (const m of [w.wq, w.wk, w.wv, w.wo]) destroyMatrix(m)
  }
}

/** The first pass's work of a new memory: the dispatches that compute its keys and values, and what to do once they are submitted. */
export interface MemoryWork {
  encode: Encode
  submitted: () => void
}

let generations = 0

/**
 * One session's encoder output as its stage's cross-attention layers see it. `setMemory`
 * only keeps the rows; the session's next forward pass allocates the keys and values on the
 * GPU and computes them (`cross_k · memory`, `cross_v · memory` per layer, `step.memory`
 * positions) in its own submission, before the layers. They stay for the session.
 */
export class GpuCrossMemory implements GpuCrossBuffers {
  readonly n: number
  /** Changes with every memory, so plans bound to another memory's buffers are rebuilt. */
  readonly generation = ++generations
  keys: GPUBuffer[] = []
  values: GPUBuffer[] = []
  private rows: Float32Array | undefined // (n, memoryDim) until the keys and values are submitted
  private input: GPUBuffer | undefined

  constructor (rows: Float32Array, n: number) {
    this.rows = rows
    this.n = n
  }

  /** Allocates the buffers and gives the dispatches that fill them, until a pass has submitted them; then undefined. */
  work (ctx: GpuContext, pool: ParamPool, weights: GpuCrossWeights[]): MemoryWork | undefined {
    const rows = this.rows
    if (rows === undefined) return undefined
    if (weights.length === 0) { // a feed-forward-only stage: nothing reads the memory
      this.rows = undefined
      return undefined
    }
    if (this.input === undefined) {
      this.input = ctx.storage(rows.byteLength, 'memory')
      ctx.device.queue.writeBuffer(this.input, 0, rows.buffer, rows.byteOffset, rows.byteLength)
      for (const w of weights) {
        this.keys.push(ctx.storage(this.n * w.wk.rows * 4, 'cross keys')) // (n, kvDim)
        this.values.push(ctx.storage(this.n * w.wv.rows * 4, 'cross values'))
      }
    }
    const memory = (st: { memory?: number }): number => st.memory!
    const parts = weights.flatMap((w, c) => [
      matmulKernel(ctx, pool, w.wk, this.input!, this.keys[c], { key: 'memory', n: memory }), // (n, kvDim)
      matmulKernel(ctx, pool, w.wv, this.input!, this.values[c], { key: 'memory', n: memory })
    ])
    return {
      encode: (pass, step) => { for (const part of parts) part(pass, step) },
      submitted: () => {
        this.rows = undefined
        this.input?.destroy() // freed once the submitted work is done
        this.input = undefined
      }
    }
  }

  destroy (): void {
    for (const b of [...this.keys, ...this.values]) b.destroy()
    this.input?.destroy()
    this.keys = []
    this.values = []
    this.input = undefined
    this.rows = undefined
  }
}
