/**
 * The timers a component schedules its work with. The mesh passes none and gets the
 * platform's; the deterministic simulator (test/sim) passes its virtual clock's.
 */
export interface Timers {
  setTimeout: (fn: () => void, ms: number) => unknown
  clearTimeout: (handle: unknown) => void
  setInterval: (fn: () => void, ms: number) => unknown
  clearInterval: (handle: unknown) => void
}

/** The platform's timers (wrapped: a browser's `setTimeout` must not be called as a method of another object). */
export const platformTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: handle => { clearTimeout(handle as ReturnType<typeof setTimeout>) },
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: handle => { clearInterval(handle as ReturnType<typeof setInterval>) }
}
