// A mesh for browser-peer e2e tests, all inside a network namespace this harness creates
// (WebRTC needs a non-loopback interface; no traffic leaves the namespace): `shardmesh start`
// (bootstrap, HTTP API and the built peer page at http://127.0.0.1:PORT/ in the namespace,
// libp2p WebSockets on ws://10.231.1.2), optional `shardmesh peer` Node compute peers, and
// one headless Chromium (WebGPU on SwiftShader) whose tabs open the served page — the URL a
// person would open — and join as peers.
import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import puppeteer from 'puppeteer-core'
import type { Browser, Page } from 'puppeteer-core'
import { buildPeerPage } from '../../node-bootstrap/src/http/peer-page.ts'
import type { PeerStatus } from '../../browser-peer/src/status.ts'
import { repoRoot } from '../fixtures.ts'
import { createNetns } from '../netns.ts'
import type { Netns } from '../netns.ts'
import { CHROMIUM_FLAGS, CHROMIUM_PATH } from './chromium.ts'

const cli = resolve(repoRoot, 'node-bootstrap/src/cli.ts')
/** Screenshots the tests write (gitignored). */
export const SCREENSHOTS = resolve(repoRoot, '.cache/screenshots')

let built: Promise<string> | undefined

/** Flags puppeteer adds by default that switch off Chromium's throttling of hidden tabs. */
export const PUPPETEER_ANTI_THROTTLING = ['--disable-background-timer-throttling', '--disable-backgrounding-occluded-windows', '--disable-renderer-backgrounding']

/**
 * The page of the sources under test, built once per test process into its own folder,
 * `.cache/peer-page/<name>` (gitignored; replaced by the next run): test files run in
 * parallel, and none may empty another's build or the dist/ a developer serves.
 */
export async function builtPage (name = 'peer-page'): Promise<string> {
  built ??= buildPeerPage({ rebuild: true, outDir: resolve(repoRoot, '.cache/peer-page', name) })
  return await built
}

export interface Tab { page: Page, browser: Browser, errors: string[], console: string[] }
export interface ApiMesh {
  coordinator: string | null
  term: number
  peers: Array<{ peerId: string, runtime: { name: string }, backend: { kind: string }, status: string, layers: number[][] }>
  plan: { version: number, stages: Array<{ range: [number, number], primary: string, standbys: string[] }> } | null
  recoveries?: unknown[]
}

export async function waitFor<T> (what: string, fn: () => Promise<T | undefined>, timeoutMs: number, detail: () => Promise<string> = async () => ''): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let lastErr = ''
  for (;;) {
    try {
      const v = await fn()
      if (v !== undefined) return v
    } catch (err) { lastErr = (err as Error).message }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${lastErr === '' ? '' : ` (last error: ${lastErr})`} ${await detail().catch(e => String(e))}`)
    await new Promise(r => setTimeout(r, 500))
  }
}

function firstJsonLine (child: ChildProcess, what: string, stderr: () => string): Promise<Record<string, any>> {
  return new Promise((res, rej) => {
    let out = ''
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      const nl = out.indexOf('\n')
      if (nl >= 0) res(JSON.parse(out.slice(0, nl)))
    })
    child.once('exit', code => { rej(new Error(`${what} exited ${String(code)} before printing its JSON: ${stderr()}`)) })
  })
}

export interface PeerMeshInit {
  model: string
  tabs: number
  nodePeers?: number
  /** --min-peers for the bootstrap. @default tabs + nodePeers */
  minPeers?: number
  /** The query string of tab i's URL (e.g. `?backend=cpu`). @default none */
  query?: (i: number) => string
  /** Chromium processes, each with its own profile; tab i opens in browser i mod n. @default 1 */
  browsers?: number
  /** Folder name of this process's page build under .cache/peer-page. @default 'peer-page' */
  pageBuild?: string
  /** --ft-level of the bootstrap (its head, and the plan's shape: `medium` keeps a spare peer). @default the CLI's */
  ftLevel?: string
  /**
   * Headed Chromium on this X display (test/browser/xvfb.ts), launched without puppeteer's
   * default anti-throttling flags: Chromium's own background policy, as a person's browser has.
   * @default headless, with puppeteer's defaults
   */
  display?: string
  /** More Chromium command-line flags. */
  chromiumArgs?: string[]
  /** `start --private`: the tabs open the printed peer page URL, whose `#join=` token admits them. */
  private?: boolean
}

export class PeerMesh {
  ns!: Netns
  boot!: { peerId: string, addrs: string[], http: string, page: string, model: string }
  tabs: Tab[] = []
  browser: Browser | undefined
  /** Every Chromium (`browsers` of the init; tab i opens in browser i mod n). */
  browsers: Browser[] = []
  /** When the first tab started opening the page (performance.now()), for the open → serving figure. */
  openedAt = 0
  private readonly children: ChildProcess[] = []
  private readonly logs = new Map<ChildProcess, string>()
  private readonly temps: string[] = []
  private page = ''

  async start (init: PeerMeshInit): Promise<void> {
    if (!existsSync(CHROMIUM_PATH)) throw new Error(`Chromium not found at ${CHROMIUM_PATH}: install Debian's chromium (bash scripts/install-system.sh, as root) or set CHROMIUM_PATH`)
    this.page = await builtPage(init.pageBuild)
    this.ns = await createNetns()
    const store = await this.temp('shardmesh-store-')
    const nodePeers = init.nodePeers ?? 0
    const meshId = `peer-page-${process.pid}-${Math.random().toString(36).slice(2, 8)}`
    const bootstrap = this.spawn('shardmesh start', [cli, 'start', '--model', init.model, '--store', store, '--port', '0', '--host', '127.0.0.1', '--json',
      '--listen', `/ip4/${this.ns.address}/tcp/0/ws`, '--min-peers', String(init.minPeers ?? init.tabs + nodePeers), ...(init.private === true ? ['--private'] : ['--mesh-id', meshId]),
      ...(init.ftLevel === undefined ? [] : ['--ft-level', init.ftLevel])])
    this.boot = await firstJsonLine(bootstrap, 'shardmesh start', () => this.logs.get(bootstrap) ?? '') as PeerMesh['boot']
    const ws = this.boot.addrs.find(a => a.includes('/ws/'))!
    for (let i = 0; i < nodePeers; i++) {
      const peer = this.spawn('shardmesh peer', [cli, 'peer', '--bootstrap', ws, '--listen', `/ip4/${this.ns.address}/tcp/0/ws`, '--json', '--mesh-id', meshId])
      await firstJsonLine(peer, 'shardmesh peer', () => this.logs.get(peer) ?? '')
    }
    for (let i = 0; i < (init.browsers ?? 1); i++) this.browsers.push(await this.launch(init))
    this.browser = this.browsers[0]
    this.openedAt = performance.now()
    await Promise.all(Array.from({ length: init.tabs }, async (_, i) => { await this.openTab(this.browsers[i % this.browsers.length], init.query?.(i)) }))
  }

  /** A Chromium of its own (fresh profile) inside the namespace. */
  private async launch (init: Pick<PeerMeshInit, 'display' | 'chromiumArgs'>): Promise<Browser> {
    const profile = await this.temp('shardmesh-chromium-')
    if (init.display !== undefined) {
      return await puppeteer.launch({
        executablePath: await this.ns.wrapper(CHROMIUM_PATH),
        pipe: true,
        headless: false,
        env: { ...process.env, DISPLAY: init.display },
        ignoreDefaultArgs: PUPPETEER_ANTI_THROTTLING,
        args: [...CHROMIUM_FLAGS.filter(f => !f.startsWith('--headless')), `--user-data-dir=${profile}`, '--enable-unsafe-webgpu', ...(init.chromiumArgs ?? [])]
      })
    }
    return await puppeteer.launch({
      executablePath: await this.ns.wrapper(CHROMIUM_PATH),
      pipe: true,
      headless: true,
      // the tabs not in front are hidden; note that puppeteer adds its anti-throttling defaults
      // here (PUPPETEER_ANTI_THROTTLING): Chromium's own background policy needs `display`
      args: [...CHROMIUM_FLAGS, `--user-data-dir=${profile}`, '--enable-unsafe-webgpu', ...(init.chromiumArgs ?? [])]
    })
  }

  private async temp (prefix: string): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), prefix))
    this.temps.push(dir)
    return dir
  }

  private spawn (what: string, args: string[]): ChildProcess {
    const child = this.ns.spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SHARDMESH_PAGE_DIST: this.page } })
    this.logs.set(child, '')
    child.stderr!.on('data', (d: Buffer) => { this.logs.set(child, (this.logs.get(child) ?? '') + d.toString()) })
    this.children.push(child)
    return child
  }

  /** A new tab opening the page URL `shardmesh start` printed. */
  async openTab (browser: Browser = this.browser!, query = ''): Promise<Tab> {
    const page = await browser.newPage()
    await page.setViewport({ width: 820, height: 760 })
    const tab: Tab = { page, browser, errors: [], console: [] }
    page.on('pageerror', err => tab.errors.push(String(err)))
    page.on('console', msg => { if (msg.type() === 'error') tab.console.push(msg.text()) })
    // the query goes before a private mesh's `#join=` fragment
    const url = new URL(this.boot.page)
    url.search = query
    await page.goto(url.href)
    await page.waitForFunction('globalThis.shardmeshPeer !== undefined', { timeout: 30_000 }).catch(() => {
      throw new Error(`the peer page did not load: ${tab.errors.join('; ') || 'no page error'}`)
    })
    this.tabs.push(tab)
    return tab
  }

  async status (tab: Tab): Promise<PeerStatus> {
    return await tab.page.evaluate(() => (globalThis as unknown as { shardmeshPeer: { status: () => PeerStatus } }).shardmeshPeer.status())
  }

  /** Fetch inside the namespace (the HTTP API listens on its loopback). */
  async http (path: string, body?: unknown): Promise<any> {
    const init = body === undefined ? '{}' : JSON.stringify({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
    const script = `fetch(${JSON.stringify(this.boot.http + path)}, ${init}).then(async r => { const t = await r.text(); if (!r.ok) { process.stderr.write(r.status + ' ' + t); process.exit(1) } process.stdout.write(t) })`
    return JSON.parse(await this.ns.exec(process.execPath, ['-e', script]))
  }

  async mesh (): Promise<ApiMesh> { return await this.http('/api/mesh') as ApiMesh }

  async describe (): Promise<string> {
    const tabs = await Promise.all(this.tabs.map(async t => await this.status(t).then(s => ({ state: s.state, peerId: s.peerId, stage: s.stage, error: s.error, backend: s.backend, compute: s.compute, errors: t.errors, console: t.console.slice(-5) })).catch(err => String(err))))
    const mesh = await this.mesh().catch(err => String(err))
    return `tabs: ${JSON.stringify(tabs)}; /api/mesh: ${JSON.stringify(mesh)}; logs: ${[...this.logs.values()].map(l => l.slice(-1500)).join(' | ')}`
  }

  async screenshot (tab: Tab, name: string): Promise<string> {
    await mkdir(SCREENSHOTS, { recursive: true })
    const path = join(SCREENSHOTS, `${name}.png`)
    await tab.page.bringToFront()
    await new Promise(r => setTimeout(r, 600)) // one render tick of the page
    const main = await tab.page.$('main')
    if (main === null) await tab.page.screenshot({ path, fullPage: true })
    else await main.screenshot({ path })
    return path
  }

  /** SIGKILL the `shardmesh start` process (the bootstrap, relay, coordinator and HTTP API). */
  async killBootstrap (): Promise<void> {
    const boot = this.children[0]
    if (boot.exitCode !== null || boot.signalCode !== null) return
    boot.kill('SIGKILL')
    await once(boot, 'exit')
  }

  async stop (): Promise<void> {
    for (const b of this.browsers) {
      await b.close().catch(() => {})
      if (b.process()?.exitCode === null) b.process()!.kill('SIGKILL')
    }
    for (const child of this.children) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL')
        await once(child, 'exit')
      }
    }
    for (const dir of this.temps) await rm(dir, { recursive: true, force: true })
    await this.ns?.destroy()
  }
}
