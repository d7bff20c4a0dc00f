import type { Timers } from '../../src/timers.ts'

/** One scheduled callback of the simulation. */
interface Event { at: number, seq: number, fn: () => void, cancelled: boolean }

/**
 * Virtual time: a queue of callbacks ordered by (time, insertion order). Nothing waits on
 * the wall clock; `next()` jumps to the next callback, so a minute of mesh time runs in
 * milliseconds and the same schedule always runs the same way.
 */
export class VirtualClock {
  now = 0
  private readonly heap: Event[] = []
  private seq = 0

  at (time: number, fn: () => void): Event {
    const ev = { at: Math.max(time, this.now), seq: this.seq++, fn, cancelled: false }
    this.heap.push(ev)
    this.up(this.heap.length - 1)
    return ev
  }

  after (ms: number, fn: () => void): Event {
    return this.at(this.now + Math.max(0, ms), fn)
  }

  /** The next live callback, with the clock moved to its time; undefined when none is left before `until`. */
  next (until: number): Event | undefined {
    while (this.heap.length > 0) {
      const top = this.heap[0]
      if (top.at > until) return undefined
      this.pop()
      if (top.cancelled) continue
      this.now = top.at
      return top
    }
    return undefined
  }

  /**
   * Timers for one node: callbacks run only while `alive()` holds (a crashed node's
   * timers die with it). Handles are the events themselves.
   */
  timers (alive: () => boolean): Timers {
    const guard = (fn: () => void) => () => { if (alive()) fn() }
    return {
      setTimeout: (fn, ms) => this.after(ms, guard(fn)),
      clearTimeout: h => { if (h !== undefined && h !== null) (h as Event).cancelled = true },
      setInterval: (fn, ms) => {
        // one handle whose pending event is replaced at every tick
        const handle = { ev: undefined as Event | undefined, stopped: false }
        const tick = (): void => {
          if (handle.stopped || !alive()) return
          handle.ev = this.after(ms, tick)
          fn()
        }
        handle.ev = this.after(ms, tick)
        return handle
      },
      clearInterval: h => {
        if (h === undefined || h === null) return
        const handle = h as { ev?: Event, stopped: boolean }
        handle.stopped = true
        if (handle.ev !== undefined) handle.ev.cancelled = true
      }
    }
  }

  private less (a: Event, b: Event): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq)
  }

  private up (i: number): void {
    const h = this.heap
    while (i > 0) {
      const p = (i - 1) >> 1
      if (!this.less(h[i], h[p])) break;
      [h[i], h[p]] = [h[p], h[i]]
      i = p
    }
  }

  private pop (): void {
    const h = this.heap
    const last = h.pop()!
    if (h.length === 0) return
    h[0] = last
    let i = 0
    for (;;) {
      const l = 2 * i + 1
      const r = l + 1
      let m = i
      if (l < h.length && this.less(h[l], h[m])) m = l
      if (r < h.length && this.less(h[r], h[m])) m = r
      if (m === i) return
      [h[i], h[m]] = [h[m], h[i]]
      i = m
    }
  }
}

/** A small seeded PRNG (mulberry32): the same seed gives the same schedule everywhere. */
export class Rng {
  private s: number
  constructor (seed: number) { this.s = seed >>> 0 }

  /** Uniform in [0, 1). */
  next (): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0
    let t = this.s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }

  /** Uniform in [lo, hi). */
  range (lo: number, hi: number): number { return lo + (hi - lo) * this.next() }
  int (lo: number, hi: number): number { return Math.floor(this.range(lo, hi + 1)) }
  chance (p: number): boolean { return this.next() < p }
  pick<T> (xs: readonly T[]): T { return xs[Math.floor(this.next() * xs.length)] }

  /** An independent stream (for a node's election jitter), derived from this one. */
  fork (): Rng { return new Rng(Math.floor(this.next() * 4294967296)) }
}
