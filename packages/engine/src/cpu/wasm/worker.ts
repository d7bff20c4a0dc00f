/**
 * A matmul worker (a Web Worker, or a Node worker thread). It instantiates the kernels on the
 * shared memory it is sent, then serves the jobs the main thread posts in the control block
 * until it is told to exit. Between jobs it spins for SPIN_MS, then sleeps in Atomics.wait.
 */
import { controlInts, runChunks, workerSlots } from './control.ts'
import type { Kernel } from './kernels.ts'

export interface WorkerStart {
  module: WebAssembly.Module
  memory: WebAssembly.Memory
  /** Byte offset of the control block. */
  control: number
  workers: number
  /** This worker's slot in the control block. */
  index: number
  /** Export names, in the order of the control block's kernel index. */
  kernels: string[]
}

/** Spinning keeps the wake-up latency of back-to-back matmuls in microseconds. */
const SPIN_MS = 2

function nextJob (ctl: Int32Array, job: number): number {
  let deadline = performance.now() + SPIN_MS
  for (let i = 1; ; i++) {
    const seq = Atomics.load(ctl, job)
    if (seq !== 0) return seq
    if ((i & 255) === 0 && performance.now() > deadline) {
      Atomics.wait(ctl, job, 0)
      deadline = performance.now() + SPIN_MS
    }
  }
}

function serve (start: WorkerStart): void {
  const instance = new WebAssembly.Instance(start.module, { env: { memory: start.memory } })
  const kernels = start.kernels.map(name => instance.exports[name] as Kernel)
  const ctl = new Int32Array(start.memory.buffer, start.control, controlInts(start.workers))
  const { job, done, failed, ready } = workerSlots(start.index)
  Atomics.store(ctl, ready, 1)
  for (;;) {
    const seq = nextJob(ctl, job)
    if (seq < 0) return
    if (Atomics.compareExchange(ctl, job, seq, 0) !== seq) continue // the main thread took the job back
    try {
      runChunks(ctl, kernels)
    } catch {
      Atomics.store(ctl, failed, 1)
    }
    Atomics.store(ctl, done, seq)
  }
}

interface NodeWorkerThreads { parentPort: { once: (event: 'message', listener: (start: WorkerStart) => void) => void } | null }
const nodeThreads = globalThis.process?.getBuiltinModule?.('node:worker_threads') as NodeWorkerThreads | undefined
if (nodeThreads?.parentPort != null) nodeThreads.parentPort.once('message', serve)
else globalThis.addEventListener('message', event => serve((event as MessageEvent<WorkerStart>).data), { once: true })
