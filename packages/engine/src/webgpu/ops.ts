import type { Tensor } from '@shardmesh/model'
import { RopeTable } from '../cpu/kernels.ts'
import { requestContext } from './context.ts'
import type { GpuContext, GpuContextInit } from './context.ts'
import { attentionKernel } from './kernels/attention.ts'
import type { AttentionShape } from './kernels/attention.ts'
import { addKernel, swigluKernel } from './kernels/elementwise.ts'
import { embeddingKernel } from './kernels/embedding.ts'
import type { Encode } from './kernels/encode.ts'
import { matmulKernel } from './kernels/matmul.ts'
import { meanKernel } from './kernels/mean.ts'
import { rmsnormKernel } from './kernels/rmsnorm.ts'
import { ropeKernel } from './kernels/rope.ts'
import type { RopeShape } from './kernels/rope.ts'
import { softmaxKernel, topkKernel } from './kernels/sampling.ts'
import { destroyMatrix, uploadMatrix } from './matrix.ts'
import type { GpuMatrix } from './matrix.ts'
import { ParamPool } from './params.ts'
import type { Step } from './params.ts'
import { Readback } from './readback.ts'
import { timePass } from './timing.ts'
import type { OpTiming } from './timing.ts'

/** One kernel bound to uploaded inputs, ready to run (once for a result, many times to time it). */
export interface PreparedOp {
  /** Run the kernel `reps` times in one submission and wait for the GPU. */
  run: (reps?: number) => Promise<void>
  /** Time `reps` runs in one submission (wall, and GPU timestamps where available). */
  time: (reps: number) => Promise<OpTiming>
  /** The output buffer's contents (or those of input `index`, for kernels that work in place). */
  read: (index?: number) => Promise<ArrayBuffer>
  destroy: () => void
}

/**
 * Each WebGPU kernel on its own, fed from and read back into host arrays: the compliance
 * suite compares them with their CPU twins and the benchmark times them. The stage runs the
 * same kernel builders (`kernels/`) inside one submission per forward pass.
 */
export class WebGpuOps {
  readonly ctx: GpuContext

  private constructor (ctx: GpuContext) {
    this.ctx = ctx
  }

  static async create (init: GpuContextInit = {}): Promise<WebGpuOps> {
    return new WebGpuOps(await requestContext(init))
  }

  upload (t: Tensor): GpuMatrix {
    return uploadMatrix(this.ctx, t)
  }

  /** Bind `build`'s kernel to buffers holding `inputs`; `output` is the index read back. */
  prepare (inputs: Array<ArrayBufferView | number>, output: number, step: Partial<Step>, build: (pool: ParamPool, buffers: GPUBuffer[]) => Encode): PreparedOp {
    const { ctx } = this
    const pool = new ParamPool(ctx, 4)
    const buffers = inputs.map((input, i) => {
      const bytes = typeof input === 'number' ? input : input.byteLength
      const buffer = ctx.storage(bytes, `op input ${i}`)
      if (typeof input !== 'number') ctx.device.queue.writeBuffer(buffer, 0, input.buffer, input.byteOffset, Math.ceil(input.byteLength / 4) * 4)
      return buffer
    })
    const encode = build(pool, buffers)
    const full: Step = { n: 1, start: 0, rows: 1, k: 1, ...step }
    pool.write(full)
    const readback = new Readback(ctx)
    const bytesOf = (i: number): number => { const input = inputs[i]; return typeof input === 'number' ? input : input.byteLength }
    return {
      run: async (reps = 1) => {
        await ctx.guarded('op', async () => {
          const encoder = ctx.device.createCommandEncoder()
          const pass = encoder.beginComputePass()
          for (let i = 0; i < reps; i++) encode(pass, full)
          pass.end()
          ctx.device.queue.submit([encoder.finish()])
          await ctx.device.queue.onSubmittedWorkDone()
        })
      },
      time: async reps => await timePass(ctx, encode, full, reps),
      read: async (index = output) => {
        const bytes = bytesOf(index)
        return await ctx.guarded('op readback', async () => {
          const staging = readback.ensure(bytes)
          const encoder = ctx.device.createCommandEncoder()
          encoder.copyBufferToBuffer(buffers[index], 0, staging, 0, Math.ceil(bytes / 4) * 4)
          ctx.device.queue.submit([encoder.finish()])
          return await readback.read(bytes)
        })
      },
      destroy: () => {
        for (const b of buffers) b.destroy()
        pool.destroy()
        readback.destroy()
      }
    }
  }

  private async once (op: PreparedOp): Promise<ArrayBuffer> {
    try {
      await op.run()
      return await op.read()
    } finally {
      op.destroy()
    }
  }

  /** y `(n, rows)` = x `(n, cols)` · wᵀ. */
  prepareMatmul (w: GpuMatrix, x: Float32Array, n: number): PreparedOp {
    return this.prepare([x, n * w.rows * 4], 1, { n }, (pool, [xb, yb]) => matmulKernel(this.ctx, pool, w, xb, yb, { key: 'op' }))
  }

  async matmul (w: GpuMatrix | Tensor, x: Float32Array, n: number): Promise<Float32Array> {
    const m = 'chunks' in w ? w : this.upload(w)
    try {
      return new Float32Array(await this.once(this.prepareMatmul(m, x, n)))
    } finally {
      if (m !== w) destroyMatrix(m)
    }
  }

  prepareRmsnorm (x: Float32Array, w: Float32Array, n: number, dim: number, eps: number): PreparedOp {
    return this.prepare([x, w, n * dim * 4], 2, { n }, (pool, [xb, wb, ob]) => rmsnormKernel(this.ctx, pool, xb, wb, ob, { key: 'op', dim, eps }))
  }

  async rmsnorm (x: Float32Array, w: Float32Array, n: number, dim: number, eps: number): Promise<Float32Array> {
    return new Float32Array(await this.once(this.prepareRmsnorm(x, w, n, dim, eps)))
  }

  /**
   * q `(n, nHeads, headDim)` and k `(start + n, nKvHeads, headDim)` (a cache; rows
   * `[start, start + n)` are rotated) after RoPE; theta as in the model config.
   */
  async rope (q: Float32Array, k: Float32Array, n: number, start: number, shape: RopeShape, theta: number): Promise<{ q: Float32Array, k: Float32Array }> {
    const op = this.prepareRope(q, k, n, start, shape, theta)
    try {
      await op.run()
      return { q: new Float32Array(await op.read(0)), k: new Float32Array(await op.read(1)) }
    } finally {
      op.destroy()
    }
  }

  prepareRope (q: Float32Array, k: Float32Array, n: number, start: number, shape: RopeShape, theta: number): PreparedOp {
    const table = ropeTable(shape.headDim, theta, start + n)
    return this.prepare([q, k, table], 0, { n, start }, (pool, [qb, kb, tb]) => ropeKernel(this.ctx, pool, qb, kb, tb, shape))
  }

  prepareAttention (q: Float32Array, k: Float32Array, v: Float32Array, n: number, start: number, shape: AttentionShape, keys = 0): PreparedOp {
    const init = keys > 0 ? { key: 'op', keys: () => keys } : undefined
    return this.prepare([q, k, v, q.byteLength], 3, { n, start }, (pool, [qb, kb, vb, ob]) => attentionKernel(this.ctx, pool, qb, kb, vb, ob, shape, init))
  }

  /**
   * out `(n, nHeads, headDim)` of causal attention at positions `[start, start + n)`, or with
   * `keys` > 0 of every row over keys `[0, keys)` unmasked (`start` unused).
   */
  async attention (q: Float32Array, k: Float32Array, v: Float32Array, n: number, start: number, shape: AttentionShape, keys = 0): Promise<Float32Array> {
    return new Float32Array(await this.once(this.prepareAttention(q, k, v, n, start, shape, keys)))
  }

  prepareSwiglu (gate: Float32Array, up: Float32Array): PreparedOp {
    return this.prepare([gate, up], 0, { n: 1 }, (pool, [g, u]) => swigluKernel(this.ctx, pool, g, u, gate.length))
  }

  async swiglu (gate: Float32Array, up: Float32Array): Promise<Float32Array> {
    return new Float32Array(await this.once(this.prepareSwiglu(gate, up)))
  }

  prepareAdd (x: Float32Array, y: Float32Array): PreparedOp {
    return this.prepare([x, y], 0, { n: 1 }, (pool, [a, b]) => addKernel(this.ctx, pool, a, b, x.length))
  }

  async add (x: Float32Array, y: Float32Array): Promise<Float32Array> {
    return new Float32Array(await this.once(this.prepareAdd(x, y)))
  }

  prepareMean (x: Float32Array, n: number, dim: number): PreparedOp {
    return this.prepare([x, dim * 4], 1, { n }, (pool, [xb, ob]) => meanKernel(this.ctx, pool, xb, ob, dim))
  }

  /** The mean `(dim)` of x's n rows `(n, dim)`. */
  async mean (x: Float32Array, n: number, dim: number): Promise<Float32Array> {
    return new Float32Array(await this.once(this.prepareMean(x, n, dim)))
  }

  prepareEmbedding (table: GpuMatrix, tokens: ArrayLike<number>): PreparedOp {
    const ids = Uint32Array.from(tokens)
    return this.prepare([ids, ids.length * table.cols * 4], 1, { n: ids.length }, (pool, [tb, ob]) => embeddingKernel(this.ctx, pool, table, tb, ob))
  }

  /** Rows `tokens` of `table` as f32 `(n, cols)`. */
  async embedding (table: GpuMatrix | Tensor, tokens: ArrayLike<number>): Promise<Float32Array> {
    const m = 'chunks' in table ? table : this.upload(table)
    try {
      return new Float32Array(await this.once(this.prepareEmbedding(m, tokens)))
    } finally {
      if (m !== table) destroyMatrix(m)
    }
  }

  /** Softmax of each row of x `(n, len)` at `temperature`. */
  async softmax (x: Float32Array, n: number, len: number, temperature: number): Promise<Float32Array> {
    return new Float32Array(await this.once(this.prepare([x, x.byteLength], 1, { n }, (pool, [xb, ob]) => softmaxKernel(this.ctx, pool, xb, ob, len, temperature))))
  }

  prepareTopk (logits: Float32Array, k: number): PreparedOp {
    return this.prepare([logits, k * 8], 1, { k }, (pool, [lb, ob]) => topkKernel(this.ctx, pool, lb, ob, { key: 'op', len: logits.length, offset: () => 0 }))
  }

  /** The k best (index, value) of logits, larger value first, lower index first on ties. */
  async topk (logits: Float32Array, k: number): Promise<{ indices: Uint32Array, values: Float32Array }> {
    const raw = new Uint32Array(await this.once(this.prepareTopk(logits, k)))
    const n = Math.min(k, logits.length)
    const indices = new Uint32Array(n)
    const values = new Float32Array(n)
    const bits = new Float32Array(raw.buffer)
    for (let i = 0; i < n; i++) { indices[i] = raw[2 * i]; values[i] = bits[2 * i + 1] }
    return { indices, values }
  }

}

/** The CPU backend's cos/sin table `(positions, headDim/2)`, interleaved as (cos, sin) pairs. */
export function ropeTable (headDim: number, theta: number, positions: number): Float32Array {
  const table = new RopeTable(headDim, theta)
  table.ensure(positions)
  const half = headDim / 2
  const out = new Float32Array(positions * half * 2)
  for (let i = 0; i < positions * half; i++) {
    out[2 * i] = table.cos[i]
    out[2 * i + 1] = table.sin[i]
  }
  return out
}
