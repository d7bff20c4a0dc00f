// The counter to Chromium's throttling of a hidden tab (issue 11; browser-peer/README.md
// "Hidden tabs"): the page's setTimeout/setInterval are replaced by timers that run in a
// dedicated clock Worker (clock-worker.ts), so the mesh's announcements, failure sweep and
// election timers, and libp2p's own (gossipsub heartbeat, stream timeouts), keep their cadence
// in a background tab. The callback runs on the page from the Worker's message, a task Chromium
// does not throttle. Installed before libp2p starts; `?clock=page` keeps the page's own timers.

export type ClockRequest =
  | { op: 'set', id: number, ms: number, repeat: boolean }
  | { op: 'clear', id: number }

export interface ClockStats {
  /** `worker`: timers run in the clock Worker; `page`: the page's own (throttled when hidden). */
  kind: 'worker' | 'page'
  /** Timer callbacks run from the Worker's ticks. */
  fired: number
  /** Timers waiting in the Worker. */
  pending: number
  /** Set when the Worker failed: the page's own timers took over its pending ones. */
  error?: string
}

interface Pending { fn: (...args: unknown[]) => void, args: unknown[], ms: number, repeat: boolean }
type Handler = string | ((...args: unknown[]) => void)

/** Ids of Worker timers: above the page's own ids, so a clear of an id from before the install still reaches the page's timers. */
const FIRST_ID = 2 ** 30

/** Replace the page's timer functions with the clock Worker's; returns live stats. */
export function installWorkerClock (): ClockStats {
  const native = {
    setTimeout: globalThis.setTimeout.bind(globalThis),
    setInterval: globalThis.setInterval.bind(globalThis),
    clearTimeout: globalThis.clearTimeout.bind(globalThis)
  }
  const stats: ClockStats = { kind: 'worker', fired: 0, pending: 0 }
  const pending = new Map<number, Pending>()
  let next = FIRST_ID
  let failed = false
  /** After a failure: the page's timer that took over each Worker timer. */
  const moved = new Map<number, ReturnType<typeof setTimeout>>()
  const worker = new Worker(new URL('./clock-worker.ts', import.meta.url), { type: 'module', name: 'shardmesh-clock' })
  const post = (m: ClockRequest): void => { worker.postMessage(m) }

  worker.onmessage = (e: MessageEvent<number>) => {
    const t = pending.get(e.data)
    if (t === undefined) return // cleared while its tick was in flight
    if (!t.repeat) pending.delete(e.data)
    stats.pending = pending.size
    stats.fired++
    t.fn(...t.args)
  }
  // the Worker gone: its pending timers go to the page's own timers (throttled, but not lost), visibly
  worker.onerror = (e: ErrorEvent) => {
    failed = true
    stats.error = `the clock worker failed: ${e.message}`
    console.error(stats.error)
    for (const [id, t] of pending) moved.set(id, (t.repeat ? native.setInterval : native.setTimeout)(t.fn, t.ms, ...t.args))
    pending.clear()
    stats.pending = 0
  }

  const set = (repeat: boolean) => (handler: Handler, ms = 0, ...args: unknown[]): unknown => {
    // a string handler is eval'd code: leave it to the page
    if (typeof handler !== 'function' || failed) return (repeat ? native.setInterval : native.setTimeout)(handler as TimerHandler, ms, ...args)
    const id = next++
    const delay = Number.isFinite(Number(ms)) ? Math.max(0, Number(ms)) : 0
    pending.set(id, { fn: handler, args, ms: delay, repeat })
    stats.pending = pending.size
    post({ op: 'set', id, ms: delay, repeat })
    return id
  }
  const clear = (id: unknown): void => {
    if (typeof id !== 'number' || id < FIRST_ID) { native.clearTimeout(id as number | undefined); return }
    if (moved.has(id)) { native.clearTimeout(moved.get(id)); moved.delete(id); return }
    if (pending.delete(id)) post({ op: 'clear', id })
    stats.pending = pending.size
  }
  Object.assign(globalThis, { setTimeout: set(false), setInterval: set(true), clearTimeout: clear, clearInterval: clear })
  return stats
}
