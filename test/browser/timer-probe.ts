import type { Page } from 'puppeteer-core'

/** What a probe saw: the times each chained 1 s timer fired. */
export interface TimerProbe { own: number[], page: number[] }

/**
 * Chained 1 s timers in `page` (nesting level ≥ 5 after five ticks: the ones intensive
 * throttling limits): one on a hidden same-origin iframe's `setTimeout` (the page's own
 * timers, which the peer's clock Worker does not replace) and one on the page's `setTimeout`.
 */
export async function installTimerProbe (page: Page): Promise<void> {
  await page.evaluate(() => {
    const frame = document.createElement('iframe')
    frame.style.display = 'none'
    document.body.append(frame)
    const own = frame.contentWindow!.setTimeout.bind(frame.contentWindow)
    const probe = { own: [] as number[], page: [] as number[] }
    const chain = (set: (fn: () => void, ms: number) => unknown, into: number[]): void => {
      const tick = (): void => { into.push(Date.now()); set(tick, 1000) }
      set(tick, 1000)
    }
    chain(own, probe.own)
    chain((fn, ms) => setTimeout(fn, ms), probe.page)
    ;(globalThis as unknown as { hiddenProbe: unknown }).hiddenProbe = probe
  })
}

/** The ticks `installTimerProbe` recorded so far. */
export async function readTimerProbe (page: Page): Promise<TimerProbe> {
  return await page.evaluate(() => (globalThis as unknown as { hiddenProbe: { own: number[], page: number[] } }).hiddenProbe)
}
