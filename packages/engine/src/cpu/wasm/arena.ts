import { f16Table } from '@shardmesh/model'
import { StageConfigError } from '../../errors.ts'
import { controlInts } from './control.ts'
import { KERNEL_EXPORTS, kernelModuleBytes } from './kernels.ts'
import { Q8_QUANTIZE_EXPORT } from './kernel-q8-quantize.ts'
import type { Quantizer } from './kernel-q8-quantize.ts'
import type { Kernel, KernelId } from './kernels.ts'
import { MatmulThreads } from './threads.ts'

const PAGE = 65536
/** wasm32 memories end at 4 GiB. */
const MAX_PAGES = 65536
/** Allocations start on cache lines. */
const ALIGN = 64

const compiled = new Map<boolean, WebAssembly.Module>()

function kernelModule (shared: boolean): WebAssembly.Module {
  let module = compiled.get(shared)
  if (module === undefined) {
    module = new WebAssembly.Module(kernelModuleBytes(shared))
    compiled.set(shared, module)
  }
  return module
}

export interface WasmArenaInit {
  /**
   * Threads that share each large matmul, the calling one included. More than one needs a
   * shared memory (SharedArrayBuffer: in browsers, a cross-origin isolated page).
   * @default 1
   */
  threads?: number
}

/** Multiply-adds (rows · cols · n) from which a matmul is split across threads. */
export const THREAD_MIN_MACS = 1 << 18
/** Chunks per thread a split matmul's rows are cut into, so a preempted thread delays little. */
const CHUNKS_PER_THREAD = 4

/**
 * One WebAssembly.Memory with the matmul kernels instantiated on it. Weight matrices are
 * copied in once and bump-allocated: nothing is freed while the arena lives, and the memory
 * goes away with the arena. x and y pass through one scratch region that grows as needed.
 */
export class WasmArena {
  readonly memory: WebAssembly.Memory
  private readonly kernels: Array<[string, Kernel]>
  private readonly index: Record<KernelId, number>
  private pool: MatmulThreads | undefined
  private readonly quantizer: Quantizer
  /** Byte offset of the f16 → f32 table the quantized kernels read block scales from. */
  readonly table: number
  /** Views of the whole memory, renewed when it grows. */
  bytes = new Uint8Array(0)
  f32 = new Float32Array(0)
  i16 = new Int16Array(0)
  private top = 0
  private scratchAt = 0
  private scratchBytes = 0

  constructor (init: WasmArenaInit = {}) {
    const workers = Math.max(0, (init.threads ?? 1) - 1)
    const shared = workers > 0
    const module = kernelModule(shared)
    this.memory = new WebAssembly.Memory({ initial: 1, maximum: MAX_PAGES, shared })
    const instance = new WebAssembly.Instance(module, { env: { memory: this.memory } })
    const ids = Object.keys(KERNEL_EXPORTS) as KernelId[]
    this.kernels = ids.map(l => [KERNEL_EXPORTS[l], instance.exports[KERNEL_EXPORTS[l]] as Kernel])
    this.index = Object.fromEntries(ids.map((l, i) => [l, i])) as Record<KernelId, number>
    this.quantizer = instance.exports[Q8_QUANTIZE_EXPORT] as Quantizer
    const table = f16Table()
    this.table = this.alloc(table.byteLength)
    this.f32.set(table, this.table / 4)
    if (shared) this.pool = new MatmulThreads(module, this.memory, this.alloc(4 * controlInts(workers)), workers, this.kernels)
  }

  /** Threads that share large matmuls now: 1 plus the workers that have started. */
  get threads (): number {
    return 1 + (this.pool?.ready ?? 0)
  }

  /**
   * y = x · Wᵀ with the matrix, x `(n, cols)` and y `(n, rows)` already in the memory
   * (byte offsets); split across the threads when it is large enough to pay.
   */
  matmul (layout: KernelId, w: number, rows: number, cols: number, x: number, n: number, y: number): void {
    const pool = this.pool
    if (pool === undefined || rows * cols * n < THREAD_MIN_MACS) {
      this.kernels[this.index[layout]][1](w, rows, cols, x, n, y, 0, rows, this.table)
      return
    }
    const chunk = Math.max(1, Math.ceil(rows / (CHUNKS_PER_THREAD * (pool.size + 1))))
    pool.run(this.index[layout], [w, rows, cols, x, n, y, this.table], chunk)
  }

  /**
   * Quantize x `(n, groups · 128)` f32 at byte offset `x` into the integer kernel's activation
   * groups at `out` (`kernel-q8-quantize.ts`), on the calling thread.
   */
  quantizeQ8 (x: number, n: number, groups: number, out: number): void {
    this.quantizer(x, n, groups, out)
  }

  /** Stop the arena's worker threads; later matmuls run on the calling thread alone. */
  close (): void {
    this.pool?.close()
    this.pool = undefined
  }

  /** `byteLength` bytes for the arena's lifetime; returns their byte offset. */
  alloc (byteLength: number): number {
    const at = Math.ceil(this.top / ALIGN) * ALIGN
    const end = at + byteLength
    const have = this.memory.buffer.byteLength
    if (end > have) {
      const pages = Math.ceil((end - have) / PAGE)
      if (have / PAGE + pages > MAX_PAGES) {
        throw new StageConfigError(`the cpu backend's weights would need ${end} bytes; a WebAssembly memory holds at most 4 GiB`)
      }
      this.memory.grow(pages)
    }
    if (this.bytes.byteLength !== this.memory.buffer.byteLength) {
      this.bytes = new Uint8Array(this.memory.buffer)
      this.f32 = new Float32Array(this.memory.buffer)
      this.i16 = new Int16Array(this.memory.buffer)
    }
    this.top = end
    return at
  }

  /** Byte offset of a scratch region of at least `byteLength` bytes, valid until the next call. */
  scratch (byteLength: number): number {
    if (byteLength > this.scratchBytes) {
      this.scratchBytes = Math.max(byteLength, 2 * this.scratchBytes)
      this.scratchAt = this.alloc(this.scratchBytes)
    }
    return this.scratchAt
  }
}

/** A memory for weight matrices, with its kernels and, if asked, worker threads. */
export function wasmArena (init: WasmArenaInit = {}): WasmArena {
  return new WasmArena(init)
}

/**
 * Threads worth giving a stage's arena here: 2 where there are 2 cores or more and memory can
 * be shared (in browsers, a cross-origin isolated page), else 1 (measured on 2 cores only; the
 * figures are in the README).
 */
export function availableThreads (): number {
  const cores = globalThis.navigator?.hardwareConcurrency ?? 1
  const shareable = typeof SharedArrayBuffer === 'function' && globalThis.crossOriginIsolated !== false
  return shareable && cores >= 2 ? 2 : 1
}

let processArena: WasmArena | undefined

/**
 * The arena matrices go to unless they are given one: one per process, single-threaded,
 * created on first use, never freed. Stages should own an arena instead (see `wasmArena`).
 */
export function defaultArena (): WasmArena {
  processArena ??= new WasmArena()
  return processArena
}
