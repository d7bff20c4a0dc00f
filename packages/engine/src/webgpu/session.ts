import { firstNonFinite } from '../activations.ts'
import { NonFiniteActivationError, StageClosedError, StageInputError } from '../errors.ts'
import type { ForwardOptions, StageInput, StageOutput, StageSession } from '../types.ts'
import { checkInput, checkTruncate } from '../input.ts'
import { stageLabel } from '../stage-shape.ts'
import { GpuCrossMemory } from './cross-attention.ts'
import type { MemoryWork } from './cross-attention.ts'
import type { Encode } from './kernels/encode.ts'
import { GpuKvCache } from './kv-cache.ts'
import type { WebGpuStage } from './stage.ts'

/** One session on a WebGPU stage: its KV cache stays on the GPU between forward passes. */
export class WebGpuStageSession implements StageSession {
  readonly kv: GpuKvCache
  position = 0
  protected readonly stage: WebGpuStage
  private cached: { encode: Encode, scratch: number, kv: number, memory: number } | undefined

  constructor (stage: WebGpuStage) {
    this.stage = stage
    const c = stage.config
    this.kv = new GpuKvCache(stage.ctx, stage.kvLayers[1] - stage.kvLayers[0], c.nKvHeads * c.headDim, c.contextLength)
  }

  async forward (input: StageInput, options: ForwardOptions = {}): Promise<StageOutput> {
    return await this.stage.exclusive(async () => {
      options.signal?.throwIfAborted()
      this.checkReady()
      const checked = checkInput(this.stage, this.position, input)
      this.stage.ctx.checkAlive()
      const out = await this.stage.run(this, checked, options)
      this.position += checked.n
      return out
    })
  }

  /** Throws when the session cannot run yet (a decoder session without its memory). */
  protected checkReady (): void {}

  /** The memory the stage's cross-attention reads (decoder sessions). */
  get crossMemory (): GpuCrossMemory | undefined {
    return undefined
  }

  /** Dispatches that must run before this pass's layers: a new memory's cross keys and values. */
  memoryWork (): MemoryWork | undefined {
    const memory = this.crossMemory
    return memory?.work(this.stage.ctx, this.stage.pool, this.stage.cross!.weights)
  }

  /** The forward plan for the current scratch, KV and memory buffers (rebuilt when any moved). */
  plan (): Encode {
    const scratch = this.stage.scratch.generation
    const kv = this.kv.generation
    const memory = this.crossMemory?.generation ?? 0
    let c = this.cached
    if (c === undefined || c.scratch !== scratch || c.kv !== kv || c.memory !== memory) {
      c = this.cached = { encode: this.stage.plan(this.kv, this.crossMemory), scratch, kv, memory }
    }
    return c.encode
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

/**
 * A session of a decoder stage (`crossAttention`): only these have `setMemory`, so a caller
 * can tell a stage that needs a memory by its sessions. The memory's cross keys and values
 * are computed on the GPU by the next forward pass, once, and kept until `close` or the
 * next `setMemory`.
 */
export class WebGpuDecoderSession extends WebGpuStageSession {
  private memory: GpuCrossMemory | undefined

  get crossMemory (): GpuCrossMemory | undefined {
    return this.memory
  }

  get memoryLength (): number | undefined {
    return this.memory?.n
  }

  /** The encoder output `(n, memoryDim)` this session's cross-attention reads. */
  setMemory (memory: Float32Array, n: number): void {
    const { stage } = this
    const memoryDim = stage.cross!.memoryDim
    if (this.position !== 0) throw new StageInputError(`a memory is set before the first forward (position 0); the session is at ${this.position}`)
    if (!Number.isSafeInteger(n) || n < 1) throw new StageInputError(`a memory needs a positive whole number of positions, got ${n}`)
    if (!(memory instanceof Float32Array) || memory.length !== n * memoryDim) {
      throw new StageInputError(`a memory of ${n} positions of dim ${memoryDim} has ${n * memoryDim} values, got ${memory?.length}`)
    }
    const bad = firstNonFinite(memory)
    if (bad >= 0) throw new NonFiniteActivationError(`memory value ${bad} (position ${Math.floor(bad / memoryDim)}) is ${memory[bad]}`)
    if (stage.isClosed) throw new StageClosedError(`stage ${stageLabel(stage.units)} is closed`)
    this.memory?.destroy()
    this.memory = new GpuCrossMemory(memory.slice(), n)
  }

  protected checkReady (): void {
    if (this.memory === undefined) {
      throw new StageInputError(`stage ${stageLabel(this.stage.units)} cross-attends to an encoder output: call setMemory before the first forward`)
    }
  }

  close (): void {
    super.close()
    this.memory?.destroy()
    this.memory = undefined
  }
}
