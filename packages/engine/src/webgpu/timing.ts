import { BufferUsage, MapMode } from './constants.ts'
import type { GpuContext } from './context.ts'
import type { Encode } from './kernels/encode.ts'
import type { Step } from './params.ts'

export interface OpTiming {
  /** Wall time per repetition of one submission of `reps` repetitions, waited for. */
  wallMs: number
  /** GPU time per repetition between the pass's begin and end timestamps (timestamp-query only). */
  gpuMs?: number
}

/** Time `reps` back-to-back repetitions of `encode` in one compute pass and one submission. */
export async function timePass (ctx: GpuContext, encode: Encode, step: Step, reps: number): Promise<OpTiming> {
  const { device } = ctx
  const stamps = ctx.info.timestampQuery
  const querySet = stamps ? device.createQuerySet({ type: 'timestamp', count: 2 }) : undefined
  const resolved = stamps ? ctx.buffer(16, 0x200 /* QUERY_RESOLVE */ | BufferUsage.COPY_SRC, 'timestamps') : undefined
  const staging = stamps ? ctx.buffer(16, BufferUsage.MAP_READ | BufferUsage.COPY_DST, 'timestamps readback') : undefined
  try {
    return await ctx.guarded('timing', async () => {
      const t0 = performance.now()
      const encoder = device.createCommandEncoder()
      const pass = encoder.beginComputePass(querySet === undefined ? {} : { timestampWrites: { querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } })
      for (let i = 0; i < reps; i++) encode(pass, step)
      pass.end()
      if (querySet !== undefined) {
        encoder.resolveQuerySet(querySet, 0, 2, resolved!, 0)
        encoder.copyBufferToBuffer(resolved!, 0, staging!, 0, 16)
      }
      device.queue.submit([encoder.finish()])
      await device.queue.onSubmittedWorkDone()
      const wallMs = (performance.now() - t0) / reps
      if (staging === undefined) return { wallMs }
      await staging.mapAsync(MapMode.READ)
      const [begin, end] = new BigUint64Array(staging.getMappedRange().slice(0))
      staging.unmap()
      return { wallMs, gpuMs: Number(end - begin) / 1e6 / reps }
    })
  } finally {
    querySet?.destroy()
    resolved?.destroy()
    staging?.destroy()
  }
}

/**
 * The device's copy bandwidth in bytes/s: `reps` copyBufferToBuffer of `bytes` in one
 * submission, counting each byte read and written.
 */
export async function copyBandwidth (ctx: GpuContext, bytes: number, reps: number): Promise<number> {
  const size = Math.min(bytes, ctx.device.limits.maxBufferSize) & ~255
  const a = ctx.buffer(size, BufferUsage.COPY_SRC | BufferUsage.COPY_DST, 'bandwidth a')
  const b = ctx.buffer(size, BufferUsage.COPY_SRC | BufferUsage.COPY_DST, 'bandwidth b')
  try {
    const once = async (n: number): Promise<number> => {
      const t0 = performance.now()
      const encoder = ctx.device.createCommandEncoder()
      for (let i = 0; i < n; i++) encoder.copyBufferToBuffer(i % 2 === 0 ? a : b, 0, i % 2 === 0 ? b : a, 0, size)
      ctx.device.queue.submit([encoder.finish()])
      await ctx.device.queue.onSubmittedWorkDone()
      return performance.now() - t0
    }
    await once(1) // first touch
    return (2 * size * reps) / ((await once(reps)) / 1000)
  } finally {
    a.destroy()
    b.destroy()
  }
}
