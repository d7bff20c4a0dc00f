// What Chromium does to a hidden peer tab, and whether the page's counter holds (issue 11;
// browser-peer/README.md "Hidden tabs"). Headed Chromium on an Xvfb display, launched without
// puppeteer's anti-throttling defaults (Chromium's own background policy, a person's browser):
// `shardmesh start` with stories260K and one tab (so no WebRTC: a page with a live
// RTCPeerConnection is exempt from intensive throttling) serving the whole model; generations
// through the HTTP API in front, then the tab hidden behind another tab for --minutes, sampling
// what the bootstrap sees of it every few seconds, and generations again while hidden. Probes in
// the page: a chained 1 s timer of a same-origin iframe (the page's own timers, as Chromium
// throttles them) and one on the page's `setTimeout` (the clock Worker's by default).
// Prints JSON and tables.
//
// Run (as root: network namespace): node test/bench/hidden-tab.ts [--clock worker|page] [--minutes 6] [--grace S]
//   --clock page   the page's own timers (before the counter); default: the clock Worker
//   --grace S      Chromium's intensive-throttling grace period in s (a feature param; default Chromium's 5 min)
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { createTokenizer } from '@shardmesh/model'
import { loadModel } from '@shardmesh/model/node'
import { storiesDir } from '../fixtures.ts'
import { PeerMesh, waitFor } from '../browser/peer-mesh.ts'
import { startXvfb } from '../browser/xvfb.ts'
import { installTimerProbe, readTimerProbe } from '../browser/timer-probe.ts'

const { values: opts } = parseArgs({ options: { clock: { type: 'string', default: 'worker' }, minutes: { type: 'string', default: '6' }, grace: { type: 'string' }, tokens: { type: 'string', default: '24' } } })
if (opts.clock !== 'worker' && opts.clock !== 'page') throw new Error('--clock is worker or page')
const minutes = Number(opts.minutes)
const N = Number(opts.tokens)
const SAMPLE_MS = 3000

const dir = storiesDir()
const gguf = join(dir, 'stories260K.gguf')
const golden = JSON.parse(await readFile(join(dir, 'golden.json'), 'utf8')) as { cases: Array<{ tag: string, prompt: string, generated_tokens: number[] }> }
const once = golden.cases.find(c => c.tag === 'main' && c.prompt === 'Once upon a time')!
const tokenizer = createTokenizer((await loadModel(gguf)).tokenizer!)
const want = tokenizer.decode(once.generated_tokens.slice(0, N), { prev: tokenizer.encode(once.prompt).at(-1) })

interface Generation { when: string, ok: boolean, golden: boolean, ms: number, msPerToken?: number, error?: string }
interface Sample { t: number, status: string, lastSeenMs: number | null, inPlan: boolean, coordinator: string | null }

const xvfb = await startXvfb()
const m = new PeerMesh()
try {
  await m.start({
    model: gguf,
    tabs: 1,
    ftLevel: 'low',
    display: xvfb.display,
    pageBuild: `hidden-tab-${opts.clock}`,
    query: () => opts.clock === 'page' ? '?clock=page' : '',
    chromiumArgs: opts.grace === undefined ? [] : [`--enable-features=IntensiveWakeUpThrottling:grace_period_seconds/${opts.grace}`]
  })
  const tab = m.tabs[0]
  const status = await waitFor('the tab serving its stage', async () => {
    const s = await m.status(tab)
    return s.state === 'serving' ? s : undefined
  }, 180_000, async () => await m.describe())
  const model = (await m.http('/v1/models')).data[0].id as string

  const generate = async (when: string): Promise<Generation> => {
    const t0 = performance.now()
    let timer: ReturnType<typeof setTimeout> | undefined
    try {
      const r = await Promise.race([
        m.http('/v1/completions', { model, prompt: once.prompt, max_tokens: N, temperature: 0 }),
        new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error('no answer within 120 s')) }, 120_000) })
      ])
      const ms = Math.round(performance.now() - t0)
      return { when, ok: true, golden: r.choices[0].text === want, ms, msPerToken: Math.round(ms / N * 10) / 10 }
    } catch (err) {
      return { when, ok: false, golden: false, ms: Math.round(performance.now() - t0), error: (err as Error).message.slice(0, 200) }
    } finally {
      clearTimeout(timer)
    }
  }

  const generations: Generation[] = []
  for (let i = 0; i < 3; i++) generations.push(await generate('in front'))

  // the probes: chained 1 s timers (nesting level ≥ 5 after five, the ones intensive throttling limits)
  await installTimerProbe(tab.page)
  const other = await m.browser!.newPage()
  await other.goto('about:blank')
  await other.bringToFront()
  const hiddenAt = Date.now()
  const visibility = await tab.page.evaluate(() => document.visibilityState)
  const clockBefore = (await m.status(tab)).clock

  const samples: Sample[] = []
  while (Date.now() - hiddenAt < minutes * 60_000) {
    const t = Date.now() - hiddenAt
    try {
      const mesh = await m.mesh()
      const row = mesh.peers.find(p => p.peerId === status.peerId) as { status: string, lastSeenMs?: number } | undefined
      samples.push({ t, status: row?.status ?? 'absent', lastSeenMs: row?.lastSeenMs ?? null, inPlan: mesh.plan?.stages.some(s => s.primary === status.peerId) === true, coordinator: mesh.coordinator })
    } catch (err) {
      samples.push({ t, status: `error: ${(err as Error).message.slice(0, 80)}`, lastSeenMs: null, inPlan: false, coordinator: null })
    }
    await new Promise(resolve => setTimeout(resolve, Math.max(0, SAMPLE_MS - (Date.now() - hiddenAt - t))))
  }
  for (let i = 0; i < 3; i++) generations.push(await generate(`hidden ${Math.round((Date.now() - hiddenAt) / 6000) / 10} min`))

  const probe = await readTimerProbe(tab.page)
  const after = await m.status(tab)
  const perMinute = Array.from({ length: Math.ceil(minutes) }, (_, i) => {
    const inMinute = (ts: number[]): number => ts.filter(x => x - hiddenAt >= i * 60_000 && x - hiddenAt < (i + 1) * 60_000).length
    const s = samples.filter(x => x.t >= i * 60_000 && x.t < (i + 1) * 60_000)
    const statuses = [...new Set(s.map(x => x.status))].map(st => `${st}×${s.filter(x => x.status === st).length}`).join(' ')
    return {
      minute: i + 1,
      ownTimerTicks: inMinute(probe.own),
      pageTimerTicks: inMinute(probe.page),
      samples: s.length,
      bootstrapSaw: statuses,
      maxSilenceMs: Math.max(0, ...s.map(x => x.lastSeenMs ?? 0)),
      inPlan: `${s.filter(x => x.inPlan).length}/${s.length}`
    }
  })
  const chromium = await m.browser!.version()
  console.log(JSON.stringify({
    chromium,
    headed: true,
    clock: opts.clock,
    grace: opts.grace ?? 'default',
    visibility,
    webrtcConnections: after.webrtc,
    hiddenMinutes: minutes,
    clockStats: { before: clockBefore, after: after.clock },
    tabComputeTokens: after.compute.tokens,
    perMinute,
    generations,
    samples
  }))
  console.log(`${chromium}, headed under Xvfb, clock=${opts.clock}, grace=${opts.grace ?? 'default'}, tab ${visibility} for ${minutes} min; expected 60 ticks/min of a 1 s timer; the mesh's announce period is 400 ms, suspect after 1.2 s of silence, dead after 2 s`)
  console.table(perMinute)
  console.table(generations)
} finally {
  await m.stop()
  await xvfb.stop()
}
