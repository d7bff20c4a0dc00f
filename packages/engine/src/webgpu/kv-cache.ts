import type { GpuContext } from './context.ts'

/**
 * One session's keys and values on the GPU for the layers whose attention its stage runs,
 * `(positions, kvDim)` f32 per layer, grown by doubling up to the context length (copying
 * on the GPU) so idle sessions stay small.
 * `generation` changes whenever the buffers are replaced, which invalidates bind groups.
 */
export class GpuKvCache {
  keys: GPUBuffer[] = []
  values: GPUBuffer[] = []
  capacity = 0
  generation = 0
  private readonly ctx: GpuContext
  private readonly layers: number
  private readonly kvDim: number
  private readonly maxPositions: number

  constructor (ctx: GpuContext, layers: number, kvDim: number, maxPositions: number) {
    this.ctx = ctx
    this.layers = layers
    this.kvDim = kvDim
    this.maxPositions = maxPositions
  }

  /** Make room for `positions` positions, keeping the rows already written. */
  reserve (positions: number): void {
    if (positions <= this.capacity) return
    const capacity = Math.min(this.maxPositions, Math.max(positions, this.capacity * 2, 16))
    const bytes = capacity * this.kvDim * 4
    const keys: GPUBuffer[] = []
    const values: GPUBuffer[] = []
    for (let l = 0; l < this.layers; l++) {
      keys.push(this.ctx.storage(bytes, `kv cache keys ${l}`))
      values.push(this.ctx.storage(bytes, `kv cache values ${l}`))
    }
    if (this.capacity > 0) {
      const used = this.capacity * this.kvDim * 4
      const encoder = this.ctx.device.createCommandEncoder()
      for (let l = 0; l < this.layers; l++) {
        encoder.copyBufferToBuffer(this.keys[l], 0, keys[l], 0, used)
        encoder.copyBufferToBuffer(this.values[l], 0, values[l], 0, used)
      }
      this.ctx.device.queue.submit([encoder.finish()])
    }
    this.destroy()
    this.keys = keys
    this.values = values
    this.capacity = capacity
    this.generation++
  }

  get bytes (): number {
    return this.capacity * this.kvDim * 4 * 2 * this.layers
  }

  destroy (): void {
    for (const b of [...this.keys, ...this.values]) b.destroy()
    this.keys = []
    this.values = []
    this.capacity = 0
  }
}
