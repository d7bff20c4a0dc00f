import { BufferUsage, MapMode } from './constants.ts'
import type { GpuContext } from './context.ts'

/**
 * A MAP_READ buffer that GPU results are copied into at the end of a submission; grown on
 * demand. One per stage: its forward passes are serialized.
 */
export class Readback {
  private readonly ctx: GpuContext
  private buffer: GPUBuffer | undefined

  constructor (ctx: GpuContext) {
    this.ctx = ctx
  }

  /** The staging buffer, at least `bytes` long (call before encoding the copies into it). */
  ensure (bytes: number): GPUBuffer {
    if (this.buffer === undefined || this.buffer.size < bytes) {
      this.buffer?.destroy()
      this.buffer = this.ctx.buffer(Math.max(bytes, 256), BufferUsage.MAP_READ | BufferUsage.COPY_DST, 'readback')
    }
    return this.buffer
  }

  /** Map after the submission and copy `bytes` out. */
  async read (bytes: number): Promise<ArrayBuffer> {
    const buffer = this.buffer!
    await buffer.mapAsync(MapMode.READ, 0, Math.ceil(bytes / 4) * 4)
    try {
      return buffer.getMappedRange(0, Math.ceil(bytes / 4) * 4).slice(0, bytes)
    } finally {
      buffer.unmap()
    }
  }

  destroy (): void {
    this.buffer?.destroy()
    this.buffer = undefined
  }
}
