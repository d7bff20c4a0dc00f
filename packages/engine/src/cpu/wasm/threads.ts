import { ARGS, CHUNK, controlInts, KERNEL, NEXT, runChunks, workerSlots } from './control.ts'
import type { Kernel } from './kernels.ts'
import type { WorkerStart } from './worker.ts'

interface WorkerHandle {
  postMessage: (start: WorkerStart) => void
  terminate: () => unknown
}

interface NodeWorker extends WorkerHandle {
  unref: () => void
  on: (event: 'error', listener: (error: Error) => void) => void
}
interface NodeWorkerThreads { Worker: new (url: URL) => NodeWorker }

/** A worker running `worker.ts`: a Node worker thread that does not keep the process alive, or a Web Worker. */
function spawn (onError: (error: Error) => void): WorkerHandle {
  const node = globalThis.process?.getBuiltinModule?.('node:worker_threads') as NodeWorkerThreads | undefined
  if (node !== undefined) {
    const worker = new node.Worker(new URL('./worker.ts', import.meta.url))
    worker.unref()
    worker.on('error', onError)
    return worker
  }
  const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' })
  worker.addEventListener('error', event => onError(new Error(`matmul worker failed: ${event.message}`)))
  return worker
}

/**
 * Worker threads that share matmul jobs with the calling thread over a shared memory. A job
 * is posted to every worker; the calling thread starts claiming rows at once, and takes back
 * the job from a worker that has not picked it up by the time the rows are gone, so a slow or
 * sleeping worker never holds it up.
 */
export class MatmulThreads {
  private readonly module: WebAssembly.Module
  private readonly memory: WebAssembly.Memory
  private readonly control: number
  private readonly ctl: Int32Array
  private readonly names: string[]
  private readonly kernels: Kernel[]
  private readonly workers: WorkerHandle[] = []
  /** Workers this pool runs once started. */
  readonly size: number
  private seq = 0
  private failure: Error | undefined

  /** `control`: byte offset of `controlInts(size)` free Int32 slots in the shared `memory`. */
  constructor (module: WebAssembly.Module, memory: WebAssembly.Memory, control: number, size: number, kernels: Array<[string, Kernel]>) {
    this.module = module
    this.memory = memory
    this.control = control
    this.ctl = new Int32Array(memory.buffer, control, controlInts(size))
    this.size = size
    this.names = kernels.map(([name]) => name)
    this.kernels = kernels.map(([, kernel]) => kernel)
  }

  /** Workers that have started and serve jobs. */
  get ready (): number {
    let count = 0
    for (let i = 0; i < this.workers.length; i++) count += Atomics.load(this.ctl, workerSlots(i).ready)
    return count
  }

  /** Workers start with the first job; they join in once their kernels are instantiated. */
  private start (): void {
    const kernels = this.names
    for (let index = 0; index < this.size; index++) {
      const worker = spawn(error => { this.failure ??= error })
      worker.postMessage({ module: this.module, memory: this.memory, control: this.control, workers: this.size, index, kernels })
      this.workers.push(worker)
    }
  }

  /** Rows [0, rows) of kernel `kernel` with the given arguments, in chunks of `chunk` rows across the threads. */
  run (kernel: number, args: [w: number, rows: number, cols: number, x: number, n: number, y: number, table: number], chunk: number): void {
    if (this.failure !== undefined) throw this.failure
    if (this.workers.length === 0) this.start()
    const ctl = this.ctl
    const [w, rows, cols, x, n, y, table] = args
    ctl.set([w, rows, cols, x, n, y, 0, rows, table], ARGS)
    ctl[KERNEL] = kernel
    ctl[CHUNK] = chunk
    Atomics.store(ctl, NEXT, 0)
    const seq = this.seq = this.seq === 0x7fffffff ? 1 : this.seq + 1
    for (let i = 0; i < this.size; i++) {
      const { job } = workerSlots(i)
      Atomics.store(ctl, job, seq)
      Atomics.notify(ctl, job)
    }
    runChunks(ctl, this.kernels)
    for (let i = 0; i < this.size; i++) {
      const { job, done, failed } = workerSlots(i)
      if (Atomics.compareExchange(ctl, job, seq, 0) === seq) continue // not picked up: nothing to wait for
      while (Atomics.load(ctl, done) !== seq) { /* its last chunk is at most `chunk` rows */ }
      if (Atomics.load(ctl, failed) !== 0) throw (this.failure = new Error(`matmul worker ${i} failed`))
    }
  }

  /** Stop the workers; the pool takes no more jobs. */
  close (): void {
    for (let i = 0; i < this.workers.length; i++) {
      const { job } = workerSlots(i)
      Atomics.store(this.ctl, job, -1)
      Atomics.notify(this.ctl, job)
      void this.workers[i].terminate()
    }
  }
}
