import type { ForwardOptions, StageInput, StageOutput, StageSession } from '../types.ts'
import { checkInput, checkTruncate } from '../input.ts'
import type { Encode } from './kernels/encode.ts'
import { GpuKvCache } from './kv-cache.ts'
import type { WebGpuStage } from './stage.ts'

/** One session on a WebGPU stage: its KV cache stays on the GPU between forward passes. */
export class WebGpuStageSession implements StageSession {
  readonly kv: GpuKvCache
  position = 0
  private readonly stage: WebGpuStage
  private cached: { encode: Encode, scratch: number, kv: number } | undefined

  constructor (stage: WebGpuStage) {
    this.stage = stage
    const c = stage.config
    this.kv = new GpuKvCache(stage.ctx, stage.kvLayers[1] - stage.kvLayers[0], c.nKvHeads * c.headDim, c.contextLength)
  }

  async forward (input: StageInput, options: ForwardOptions = {}): Promise<StageOutput> {
    return await this.stage.exclusive(async () => {
      options.signal?.throwIfAborted()
      const checked = checkInput(this.stage, this.position, input)
      this.stage.ctx.checkAlive()
      const out = await this.stage.run(this, checked, options)
      this.position += checked.n
      return out
    })
  }

  /** The forward plan for the current scratch and KV buffers (rebuilt when either moved). */
  plan (): Encode {
    const scratch = this.stage.scratch.generation
    const kv = this.kv.generation
    if (this.cached === undefined || this.cached.scratch !== scratch || this.cached.kv !== kv) {
      this.cached = { encode: this.stage.plan(this.kv), scratch, kv }
    }
    return this.cached.encode
  }

  truncate (position: number): void {
    this.position = checkTruncate(position, this.position)
  }

  /** Free the KV cache; the session starts again at position 0 if used later. */
  close (): void {
    this.position = 0
    this.cached = undefined
    this.kv.destroy()
    this.kv.generation++
  }
}
