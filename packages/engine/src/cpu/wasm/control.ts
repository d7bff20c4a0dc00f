/**
 * The control block through which threads share a matmul job (Int32 slots in the shared
 * memory). The main thread writes the job, hands it to each worker through the worker's
 * `job` slot, and then every thread claims chunks of rows from `NEXT` until none are left.
 */
import type { Kernel } from './kernels.ts'

/** Next unclaimed row. */
export const NEXT = 0
/** Rows claimed at a time. */
export const CHUNK = 1
/** Index of the kernel into the list both sides agree on. */
export const KERNEL = 2
/** The kernel's 9 arguments (r0, r1 ignored: chunks set them). */
export const ARGS = 3

/**
 * Per worker i: `job` (0: none, > 0: sequence number of a posted job, -1: exit), `done` (the
 * last job it finished), `failed` (1 once a kernel threw), `ready` (1 once it serves jobs).
 */
export const workerSlots = (i: number): { job: number, done: number, failed: number, ready: number } => {
  const base = 16 + 4 * i
  return { job: base, done: base + 1, failed: base + 2, ready: base + 3 }
}

export const controlInts = (workers: number): number => 16 + 4 * workers

/** Claim and run chunks of the current job until its rows are all claimed. */
export function runChunks (ctl: Int32Array, kernels: Kernel[]): void {
  const kernel = kernels[ctl[KERNEL]]
  const chunk = ctl[CHUNK]
  const rows = ctl[ARGS + 1]
  for (;;) {
    const r0 = Atomics.add(ctl, NEXT, chunk)
    if (r0 >= rows) return
    kernel(ctl[ARGS], rows, ctl[ARGS + 2], ctl[ARGS + 3], ctl[ARGS + 4], ctl[ARGS + 5], r0, Math.min(rows, r0 + chunk), ctl[ARGS + 8])
  }
}
