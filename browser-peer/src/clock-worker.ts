// The page's clock (worker-clock.ts): its timers run here, in a dedicated Worker, because
// Chromium throttles a hidden page's own timers (1 wake-up a second at once, 1 a minute after
// minutes hidden) and not a Worker's. A timer firing posts its id; the page runs the callback.
import type { ClockRequest } from './worker-clock.ts'

const timers = new Map<number, ReturnType<typeof setTimeout>>()

self.onmessage = (e: MessageEvent<ClockRequest>) => {
  const m = e.data
  if (m.op === 'clear') {
    clearTimeout(timers.get(m.id))
    timers.delete(m.id)
    return
  }
  const fire = (): void => { (self as unknown as Worker).postMessage(m.id) }
  timers.set(m.id, m.repeat ? setInterval(fire, m.ms) : setTimeout(() => { timers.delete(m.id); fire() }, m.ms))
}
