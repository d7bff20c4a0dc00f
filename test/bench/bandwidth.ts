/**
 * Memory read bandwidth with a given number of threads: each thread scans its own slice of
 * one 512 MiB shared buffer (far larger than the caches) with memchr (`Buffer.indexOf` for a
 * byte that is not there), all starting together; bandwidth = bytes / wall time of the
 * slowest. Median of REPS scans. The buffer is written first, so no page is the shared
 * zero page.
 */
import { Worker } from 'node:worker_threads'

const BYTES = 512 * 1024 * 1024
const REPS = 5

/** A thread that scans [start, end) of the buffer each time it is told to, and says when it is done. */
const SCANNER = `
const { parentPort, workerData } = require('node:worker_threads')
const { sab, start, end } = workerData
const view = Buffer.from(sab, start, end - start)
parentPort.on('message', () => parentPort.postMessage(view.indexOf(1)))
`

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}

/** Bytes per second that `threads` threads read together. */
export async function readBandwidth (threads: number): Promise<number> {
  const sab = new SharedArrayBuffer(BYTES)
  new Uint8Array(sab).fill(2)
  const slice = Math.floor(BYTES / threads / 64) * 64
  const workers = Array.from({ length: threads }, (_, i) => new Worker(SCANNER, { eval: true, workerData: { sab, start: i * slice, end: (i + 1) * slice } }))
  const scan = async (): Promise<number> => {
    const t0 = performance.now()
    await Promise.all(workers.map(async w => await new Promise<void>(resolve => {
      w.once('message', (found: number) => {
        if (found !== -1) throw new Error('bandwidth buffer was not filled')
        resolve()
      })
      w.postMessage('scan')
    })))
    return performance.now() - t0
  }
  try {
    await scan() // warm: threads started, pages touched by this thread set
    const times: number[] = []
    for (let i = 0; i < REPS; i++) times.push(await scan())
    return (slice * threads) / (median(times) / 1000)
  } finally {
    await Promise.all(workers.map(async w => await w.terminate()))
  }
}
