// What Chromium does to a hidden tab's timers and compute (issue 11): one headless Chromium
// (Debian's, Chromium's default background policy: no anti-throttling flags), a page that
// counts a 100 ms setInterval over 5 s and times a fixed compute loop, measured in front,
// just after another tab is brought to front (hidden), and after 15 s more hidden.
// Prints JSON and a table. Run: node test/bench/hidden-tab.ts
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import puppeteer from 'puppeteer-core'
import { CHROMIUM_FLAGS, CHROMIUM_PATH } from '../browser/chromium.ts'

const profile = await mkdtemp(join(tmpdir(), 'shardmesh-hidden-'))
const browser = await puppeteer.launch({ executablePath: CHROMIUM_PATH, headless: true, pipe: true, args: [...CHROMIUM_FLAGS, `--user-data-dir=${profile}`] })
try {
  const page = await browser.newPage()
  await page.goto('data:text/html,<title>peer</title>')
  const measure = async (when: string): Promise<Record<string, string | number>> => await page.evaluate(async (when: string) => {
    let ticks = 0
    const id = setInterval(() => { ticks++ }, 100)
    // a worker's timer is the wall-clock reference (workers are not throttled with the page)
    await new Promise(resolve => { const w = new Worker(URL.createObjectURL(new Blob(['setTimeout(() => postMessage(1), 5000)']))); w.onmessage = resolve })
    clearInterval(id)
    const t0 = performance.now()
    let x = 0
    for (let i = 0; i < 2e7; i++) x = (x + i * 7) % 1000003
    return { when, visibility: document.visibilityState, intervalTicksIn5s: ticks, expectedTicks: 50, computeMs: Math.round(performance.now() - t0), x }
  }, when)
  const rows = [await measure('in front')]
  const other = await browser.newPage()
  await other.goto('data:text/html,<title>front</title>')
  await other.bringToFront()
  rows.push(await measure('hidden (just now)'))
  await new Promise(resolve => setTimeout(resolve, 15_000))
  rows.push(await measure('hidden for 20 s'))
  console.log(JSON.stringify({ chromium: await browser.version(), rows }))
  console.table(rows.map(({ x: _x, ...r }) => r))
} finally {
  await browser.close()
  await rm(profile, { recursive: true, force: true })
}
