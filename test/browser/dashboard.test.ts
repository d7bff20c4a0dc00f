// The live dashboard (issue 14) in real Chromium: `shardmesh start --local-peers 3 --ft-level low`
// (three `shardmesh peer` child processes on stories260K), the page at /dashboard/ fed by
// /api/events. It shows the real peer ids and the plan's stages, live tokens/s while a
// completion runs, and a local peer SIGKILLed mid-generation: marked not alive, and the head's
// recovery (reconnect, at level low: the peer is respawned with its key) on the timeline.
// Screenshots: .cache/screenshots/dashboard-*.png; with UPDATE_README_SHOTS=1 also docs/dashboard.png
// (the README's), so a plain test run leaves the tracked file alone.
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Page } from 'puppeteer-core'
import { buildDashboard } from '../../node-bootstrap/src/http/dashboard.ts'
import { childrenOf } from '../../node-bootstrap/test/helpers.ts'
import { repoRoot, storiesDir } from '../fixtures.ts'
import { launchChromium } from './chromium.ts'
import type { Chromium } from './chromium.ts'
import { SCREENSHOTS, waitFor } from './peer-mesh.ts'
import type { ApiMesh } from './peer-mesh.ts'

const cli = resolve(repoRoot, 'node-bootstrap/src/cli.ts')
const gguf = join(storiesDir(), 'stories260K.gguf')
const README_SHOT = resolve(repoRoot, 'docs/dashboard.png')

let start: ChildProcess
let store: string
let chromium: Chromium
let page: Page
let info: { peerId: string, http: string, dashboard: string, peers: string[] }
let stderr = ''

const api = async (path: string, body?: unknown): Promise<any> => {
  const res = await fetch(`${info.http}${path}`, body === undefined ? {} : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`)
  return await res.json()
}

/** What the page shows now: peers (id → status), stages, plan version, live figures, recoveries. */
async function shown (): Promise<{ peers: Record<string, string>, stages: Array<{ range: string, primary: string }>, plan: string, tps: number, decodeTps: number, finished: string, recoveries: string[][], feed: string }> {
  return await page.evaluate(() => ({
    peers: Object.fromEntries(Array.from(document.querySelectorAll<HTMLElement>('#peers tbody tr')).map(tr => [tr.dataset.peer!, tr.dataset.status!])),
    stages: Array.from(document.querySelectorAll<HTMLElement>('#stages li')).map(li => ({ range: li.dataset.range!, primary: li.dataset.primary! })),
    plan: document.getElementById('plan-version')!.textContent!,
    tps: Number(document.getElementById('tps')!.textContent),
    decodeTps: Number(document.getElementById('last-generation')!.dataset.decodeTps ?? 0),
    finished: document.getElementById('finished')!.textContent!,
    recoveries: Array.from(document.querySelectorAll<HTMLElement>('#recoveries tbody tr')).map(tr => tr.dataset.failed!.split(' ')),
    feed: document.getElementById('feed')!.dataset.state!
  }))
}

beforeAll(async () => {
  const dist = await buildDashboard({ rebuild: true, outDir: resolve(repoRoot, '.cache/dashboard/e2e') })
  store = await mkdtemp(join(tmpdir(), 'shardmesh-dash-'))
  start = spawn(process.execPath, [cli, 'start', '--model', gguf, '--local-peers', '3', '--ft-level', 'low', '--port', '0', '--json', '--store', store, '--mesh-id', `dashboard-${process.pid}`],
    { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: { ...process.env, SHARDMESH_DASHBOARD_DIST: dist } })
  start.stderr!.on('data', (d: Buffer) => { stderr += d.toString() })
  info = await new Promise((res, rej) => {
    let out = ''
    start.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      const nl = out.indexOf('\n')
      if (nl >= 0) res(JSON.parse(out.slice(0, nl)))
    })
    start.once('exit', code => { rej(new Error(`shardmesh start exited ${String(code)}: ${stderr}`)) })
  })
  chromium = await launchChromium({ args: ['--window-size=1400,1100'] })
  page = await chromium.browser.newPage()
  await page.setViewport({ width: 1400, height: 1100 })
  await mkdir(SCREENSHOTS, { recursive: true })
}, 240_000)

afterAll(async () => {
  await chromium?.close()
  if (start !== undefined && start.exitCode === null && start.signalCode === null) {
    try { process.kill(-start.pid!, 'SIGKILL') } catch {}
    await once(start, 'exit')
  }
  if (store !== undefined) await rm(store, { recursive: true, force: true })
}, 60_000)

describe('GET /dashboard on shardmesh start --local-peers 3 --ft-level low', () => {
  it('shows the real peers and plan, live tokens/s of a completion, and a killed peer going down with the recovery it caused', async () => {
    expect(info.dashboard).toBe(`${info.http}/dashboard/`)
    const ids = [info.peerId, ...info.peers]
    const mesh = await waitFor('four alive members and a plan using the local peers', async () => {
      const m = await api('/api/mesh') as ApiMesh
      return m.peers.filter(p => p.status === 'alive').length === 4 && m.plan !== null && m.plan.stages.some(s => info.peers.includes(s.primary)) ? m : undefined
    }, 180_000, async () => stderr.slice(-2000))

    // /dashboard (as a person types it) redirects to /dashboard/, which loads its assets and follows /api/events
    await page.goto(`${info.http}/dashboard`, { waitUntil: 'load' })
    expect(page.url()).toBe(info.dashboard)
    await waitFor('the page showing every peer alive and the plan', async () => {
      const s = await shown()
      return ids.every(id => s.peers[id] === 'alive') && s.plan === `v${mesh.plan!.version}` ? s : undefined
    }, 30_000, async () => JSON.stringify(await shown()))
    const before = await shown()
    expect(before.feed).toBe('live')
    expect(Object.keys(before.peers).sort()).toEqual([...ids].sort())
    const plan = (await api('/api/mesh') as ApiMesh).plan!
    expect(before.stages).toEqual(plan.stages.map(s => ({ range: `${s.range[0]}-${s.range[1]}`, primary: s.primary })))
    // the topology draws every member, and a line per open connection of the bootstrap, of the kind /api/mesh says (Node peers: TCP or WebSocket)
    const drawn = await page.$$eval('#topology g.node', gs => gs.map(g => (g as SVGGElement).dataset.peer!))
    expect(drawn.sort()).toEqual([...ids].sort())
    const linksOf = (m: { peers: Array<{ peerId: string, links: Array<{ kind: string }> }> }): Record<string, string[]> => Object.fromEntries(m.peers.filter(p => p.peerId !== info.peerId).map(p => [p.peerId, p.links.map(l => l.kind).sort()]))
    const lines = await waitFor('the lines drawn as /api/mesh lists the links', async () => {
      const want = linksOf(await api('/api/mesh'))
      const got = await page.$$eval('#topology line', ls => ls.map(l => [(l as SVGLineElement).dataset.peer!, (l as SVGLineElement).dataset.link!]))
      const byPeer: Record<string, string[]> = {}
      for (const [peer, kind] of got) (byPeer[peer] ??= []).push(kind)
      for (const k of Object.keys(byPeer)) byPeer[k].sort()
      return JSON.stringify(byPeer) === JSON.stringify(Object.fromEntries(Object.entries(want).map(([k, v]) => [k, v.length === 0 ? ['none'] : v]))) ? byPeer : undefined
    }, 10_000)
    for (const id of info.peers) {
      expect(lines[id].length).toBeGreaterThan(0)
      for (const kind of lines[id]) expect(['tcp', 'websocket']).toContain(kind)
    }
    await page.screenshot({ path: join(SCREENSHOTS, 'dashboard-start.png'), fullPage: true })

    // a completion: the page sees tokens/s above zero while it runs, then the driver's decode rate
    const model = (await api('/v1/models')).data[0].id as string
    let peak = 0
    const watching = (async () => {
      for (let i = 0; i < 400; i++) {
        peak = Math.max(peak, (await shown()).tps)
        if (peak > 0) return
        await new Promise(r => setTimeout(r, 100))
      }
    })()
    const done = await api('/v1/completions', { model, prompt: 'Once upon a time', max_tokens: 200, temperature: 0 })
    await watching
    expect(done.usage.completion_tokens).toBeGreaterThan(1)
    expect(peak).toBeGreaterThan(0)
    const after = await waitFor('the finished generation on the page', async () => { const s = await shown(); return s.finished === '1' ? s : undefined }, 10_000)
    expect(after.decodeTps).toBeGreaterThan(0)
    await page.screenshot({ path: join(SCREENSHOTS, 'dashboard-completion.png'), fullPage: true })

    // SIGKILL a stage's primary during a long completion: marked not alive, and the head's recovery appears
    const victimId = plan.stages.map(s => s.primary).find(p => info.peers.includes(p))!
    const slot = info.peers.indexOf(victimId)
    const victim = childrenOf(start.pid!).find(c => c.args.includes(`peer-${slot}.key`))!
    expect(victim).toBeDefined()
    const statuses = new Set<string>()
    let watchingKill = true
    const watch = (async () => {
      while (watchingKill) {
        const s = await shown().catch(() => undefined)
        if (s !== undefined) statuses.add(s.peers[victimId])
        await new Promise(r => setTimeout(r, 50))
      }
    })()
    // streamed, so the kill lands between two tokens of this generation
    const res = await fetch(`${info.http}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model, prompt: 'Once upon a time', max_tokens: 400, temperature: 0, stream: true }) })
    expect(res.status).toBe(200)
    const reader = res.body!.getReader()
    let text = ''
    while (!text.includes('"text"')) text += new TextDecoder().decode((await reader.read()).value)
    process.kill(victim.pid, 'SIGKILL')
    for (;;) {
      const { value, done } = await reader.read()
      if (done) break
      text += new TextDecoder().decode(value)
    }
    const result = text.includes('data: [DONE]') ? 'completed' : `ended without [DONE]: ${text.slice(-500)}`
    await waitFor('the recovery on the page', async () => { const s = await shown(); return s.recoveries.some(f => f.includes(victimId)) ? s : undefined }, 60_000, async () => `${JSON.stringify(await api('/api/mesh').then(m => m.recoveries))} ${result}`)
    await waitFor('the killed peer shown not alive', async () => [...statuses].some(s => s !== 'alive') ? true : undefined, 30_000, async () => [...statuses].join(','))
    watchingKill = false
    await watch
    // what the page lists is the head's RecoveryEvents, newest first, each resumed or failed as it was.
    // (At level low the head waits 15 s for the same peer; on a loaded machine its respawned
    // process may join later than that, and the session fails: the page must say so.)
    const events = (await api('/api/mesh')).recoveries as Array<{ failed: string[], ok: boolean }>
    expect(events.some(e => e.failed.includes(victimId)), JSON.stringify(events)).toBe(true)
    expect((await shown()).recoveries).toEqual(events.map(e => e.failed).reverse())
    expect(await page.$$eval('#recoveries tbody tr', trs => trs.map(tr => tr.className))).toEqual(events.map(e => e.ok ? 'ok' : 'failed').reverse())
    if (events.every(e => e.ok)) expect(result).toBe('completed')
    await page.screenshot({ path: join(SCREENSHOTS, 'dashboard-after-kill.png'), fullPage: true })
    // the history charts (read every 10 s) show the recorded generations
    await waitFor('the recorded generations charted', async () => /^[1-9]\d* generations recorded/.test(await page.$eval('#history-note', e => e.textContent ?? '')) ? true : undefined, 30_000)
    await page.screenshot({ path: join(SCREENSHOTS, 'dashboard-readme.png') })
    if (process.env.UPDATE_README_SHOTS === '1') await page.screenshot({ path: README_SHOT })
  }, 300_000)

  it('with --api-key: the page asks for the key, or takes it from #key= (then drops it from the address bar) and goes live', async () => {
    const keyed = spawn(process.execPath, [cli, 'start', '--port', '0', '--json', '--api-key', 'dash-key-1', '--db', 'none', '--store', store, '--mesh-id', `dashboard-key-${process.pid}`],
      { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: { ...process.env, SHARDMESH_DASHBOARD_DIST: resolve(repoRoot, '.cache/dashboard/e2e') } })
    try {
      const url = await new Promise<string>((res, rej) => {
        let out = ''
        keyed.stdout!.on('data', (d: Buffer) => { out += d.toString(); const nl = out.indexOf('\n'); if (nl >= 0) res(JSON.parse(out.slice(0, nl)).dashboard as string) })
        keyed.once('exit', code => { rej(new Error(`shardmesh start exited ${String(code)}`)) })
      })
      const tab = await chromium.browser.newPage()
      await tab.goto(url, { waitUntil: 'load' })
      await tab.waitForSelector('#key-form:not([hidden])', { timeout: 10_000 })
      expect(await tab.$eval('#feed', e => (e as HTMLElement).dataset.state)).toBe('key')
      // a wrong key is refused, the right one opens the feed
      await tab.type('#key', 'wrong')
      await tab.click('#key-form button')
      await tab.waitForFunction(() => document.getElementById('key-error')!.textContent!.includes('Incorrect API key'), { timeout: 10_000 })
      await tab.goto(`${url}#key=dash-key-1`, { waitUntil: 'load' })
      await tab.waitForFunction(() => document.getElementById('feed')!.dataset.state === 'live', { timeout: 10_000 })
      expect(tab.url()).toBe(url)
      await tab.close()
    } finally {
      try { process.kill(-keyed.pid!, 'SIGKILL') } catch {}
    }
  }, 60_000)
})
