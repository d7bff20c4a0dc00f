// Two headless Chromium tabs as mesh peers (DESIGN §2, §5, §9 tier 4). Everything runs inside a
// network namespace this test creates (WebRTC needs a non-loopback interface for ICE; no traffic
// leaves the namespace): the `shardmesh start` bootstrap listens on ws://10.231.1.2, Chromium is
// launched inside the namespace through a wrapper and driven over pipes, and the page (the browser
// factory `createMeshPeer`, bundled by esbuild for browsers) is served by request interception at
// http://127.0.0.1 (a secure context, which WebCrypto needs).
//
// It proves, with real libp2p, real Chromium and the real CLI:
// 1. each tab joins through the bootstrap (WebSockets + circuit relay reservation) and the two tabs
//    then hold a direct WebRTC connection to each other: multiplexer `/webrtc`, remote address with
//    `/webrtc`, not limited (a relayed connection is limited and multiplexed by yamux);
// 2. the bootstrap's `GET /api/mesh` (fetched inside the namespace) lists both tabs with their
//    browser runtime (`chrome`, as detectRuntime names Chromium), alive;
// 3. browsers take part in the election: once both tabs are voting members of the replicated
//    configuration (bootstrap + 2 tabs), the bootstrap — the first coordinator — is SIGKILLed.
//    The only live peers left are the two tabs, so the new coordinator of a higher term must be one
//    of them, and it needed the other tab's vote (majority 2 of 3): a browser won an election and a
//    browser voted, over the direct WebRTC connection (the relayed one died with the relay).
import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { build } from 'esbuild'
import puppeteer from 'puppeteer-core'
import type { Browser, Page } from 'puppeteer-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { repoRoot } from '../fixtures.ts'
import { createNetns } from '../netns.ts'
import type { Netns } from '../netns.ts'
import { CHROMIUM_FLAGS, CHROMIUM_PATH } from './chromium.ts'
import type { TabInfo } from './mesh-page.ts'

const cli = resolve(repoRoot, 'node-bootstrap/src/cli.ts')
/**
 * A static server run inside the namespace on its loopback (a secure context, which WebCrypto
 * needs). Serving the page from a real address matters: Chromium's Local Network Access checks
 * treat a page with no address (e.g. answered by request interception) as public and refuse its
 * WebSocket to 10.231.1.2; loopback -> private is allowed.
 */
const STATIC_SERVER = `
const { createServer } = require('node:http'); const { readFileSync } = require('node:fs'); const { join } = require('node:path')
const dir = process.argv[1]
const files = { '/': ['index.html', 'text/html'], '/mesh.js': ['mesh.js', 'text/javascript'] }
const server = createServer((req, res) => {
  const f = files[new URL(req.url, 'http://x').pathname]
  if (f === undefined) { res.statusCode = 404; res.end('not found'); return }
  res.setHeader('content-type', f[1]); res.end(readFileSync(join(dir, f[0])))
})
server.listen(0, '127.0.0.1', () => { process.stdout.write('http://127.0.0.1:' + server.address().port + '\\n') })
`

interface Tab { page: Page, peerId: string, errors: string[] }
interface ApiMesh { coordinator: string | null, term: number, peers: Array<{ peerId: string, runtime: { name: string, version: string }, status: string }> }

async function waitFor<T> (what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000, detail: () => Promise<string> = async () => ''): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let lastErr = ''
  for (;;) {
    try {
      const v = await fn()
      if (v !== undefined) return v
    } catch (err) { lastErr = (err as Error).message }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${lastErr === '' ? '' : ` (last error: ${lastErr})`} ${await detail().catch(() => '')}`)
    await new Promise(r => setTimeout(r, 250))
  }
}

async function bundle (): Promise<string> {
  const out = await build({
    entryPoints: [join(repoRoot, 'test/browser/mesh-page.ts')],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    // the page imports the mesh package's own dependencies (multiaddr) as it would in an app
    nodePaths: [join(repoRoot, 'packages/mesh/node_modules')],
    logLevel: 'silent'
  })
  return out.outputFiles[0].text
}

let ns: Netns | undefined
let bootstrap: ChildProcess | undefined
let bootstrapExited: Promise<unknown> | undefined
let bootstrapErr = ''
let browser: Browser | undefined
let profile: string | undefined
let pageDir: string | undefined
let pages: ChildProcess | undefined
let pagesExited: Promise<unknown> | undefined
let origin: string
let bootInfo: { peerId: string, addrs: string[], http: string }
let wsAddr: string
const tabs: Tab[] = []

async function info (tab: Tab): Promise<TabInfo> {
  return await tab.page.evaluate(() => (globalThis as unknown as { shardmeshTab: { info: () => TabInfo } }).shardmeshTab.info())
}

async function apiMesh (): Promise<ApiMesh> {
  const script = `fetch(${JSON.stringify(bootInfo.http + '/api/mesh')}).then(r => r.text()).then(t => process.stdout.write(t))`
  return JSON.parse(await ns!.exec(process.execPath, ['-e', script])) as ApiMesh
}

async function describeTabs (): Promise<string> {
  const all = await Promise.all(tabs.map(async t => await info(t).catch(err => String(err))))
  return `tabs: ${JSON.stringify(all)}; page errors: ${JSON.stringify(tabs.map(t => t.errors))}`
}

/**
 * A direct WebRTC connection from `from` to `to`: multiplexer `/webrtc` (a relayed connection is
 * yamux over the relay's stream) and no limits (a relayed connection is limited). The dialer's
 * remote address keeps the signalling path (`…/p2p-circuit/webrtc/p2p/<id>`), the listener's is
 * `/webrtc/p2p/<id>`; either way it names `/webrtc`.
 */
function direct (from: TabInfo, to: string): boolean {
  return from.connections.some(c => c.remotePeer === to && c.status === 'open' && c.multiplexer === '/webrtc' && c.remoteAddr.includes('/webrtc') && !c.limited)
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM_PATH)) throw new Error(`Chromium not found at ${CHROMIUM_PATH}: install Debian's chromium (bash scripts/install-system.sh, as root) or set CHROMIUM_PATH`)
  const js = await bundle()
  ns = await createNetns()

  bootstrap = ns.spawn(process.execPath, [cli, 'start', '--port', '0', '--json', '--listen', `/ip4/${ns.address}/tcp/0/ws`], { stdio: ['ignore', 'pipe', 'pipe'] })
  bootstrapExited = once(bootstrap, 'exit')
  bootstrap.stderr!.on('data', (d: Buffer) => { bootstrapErr += d.toString() })
  bootInfo = await new Promise((res, rej) => {
    let out = ''
    bootstrap!.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      const nl = out.indexOf('\n')
      if (nl >= 0) res(JSON.parse(out.slice(0, nl)))
    })
    bootstrap!.once('exit', code => { rej(new Error(`shardmesh start exited ${String(code)} before printing its addresses: ${bootstrapErr}`)) })
  })
  const ws = bootInfo.addrs.find(a => a.startsWith(`/ip4/${ns!.address}/`) && a.includes('/ws/'))
  if (ws === undefined) throw new Error(`the bootstrap has no ws address on ${ns.address}: ${bootInfo.addrs.join(', ')}`)
  wsAddr = ws

  pageDir = await mkdtemp(join(tmpdir(), 'shardmesh-mesh-page-'))
  await writeFile(join(pageDir, 'index.html'), '<!doctype html><meta charset="utf-8"><title>shardmesh tab</title><script type="module" src="/mesh.js"></script>')
  await writeFile(join(pageDir, 'mesh.js'), js)
  pages = ns.spawn(process.execPath, ['-e', STATIC_SERVER, pageDir], { stdio: ['ignore', 'pipe', 'pipe'] })
  pagesExited = once(pages, 'exit')
  let pagesErr = ''
  pages.stderr!.on('data', (d: Buffer) => { pagesErr += d.toString() })
  origin = await new Promise((res, rej) => {
    pages!.stdout!.once('data', (d: Buffer) => { res(d.toString().trim()) })
    pages!.once('exit', code => { rej(new Error(`the page server exited ${String(code)}: ${pagesErr}`)) })
  })

  profile = await mkdtemp(join(tmpdir(), 'shardmesh-chromium-'))
  browser = await puppeteer.launch({
    executablePath: await ns.wrapper(CHROMIUM_PATH),
    pipe: true,
    headless: true,
    args: [...CHROMIUM_FLAGS, `--user-data-dir=${profile}`]
  })

  for (let i = 0; i < 2; i++) {
    const page = await browser.newPage()
    const errors: string[] = []
    page.on('pageerror', err => errors.push(String(err)))
    await page.goto(`${origin}/`)
    await page.waitForFunction('globalThis.shardmeshTab !== undefined', { timeout: 30_000 }).catch(() => {
      throw new Error(`the mesh page bundle did not load: ${errors.join('; ') || 'no page error'}`)
    })
    const peerId = await page.evaluate(async (addr: string) => await (globalThis as unknown as { shardmeshTab: { start: (a: string) => Promise<string> } }).shardmeshTab.start(addr), wsAddr)
    tabs.push({ page, peerId, errors })
  }
}, 180_000)

afterAll(async () => {
  for (const t of tabs) await t.page.evaluate(async () => await (globalThis as unknown as { shardmeshTab: { stop: () => Promise<void> } }).shardmeshTab.stop()).catch(() => {})
  await browser?.close().catch(() => {})
  if (browser?.process()?.exitCode === null) browser.process()!.kill('SIGKILL')
  for (const [child, exited] of [[bootstrap, bootstrapExited], [pages, pagesExited]] as const) {
    if (child !== undefined && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL')
      await exited
    }
  }
  if (pageDir !== undefined) await rm(pageDir, { recursive: true, force: true })
  if (profile !== undefined) await rm(profile, { recursive: true, force: true })
  await ns?.destroy()
}, 60_000)

describe('two Chromium tabs in the mesh (network namespace, WebRTC)', () => {
  it('the tabs hold a direct WebRTC connection to each other (upgraded from the relay)', async () => {
    const [a, b] = tabs
    await waitFor('a direct WebRTC connection between the tabs', async () => {
      const [ia, ib] = await Promise.all([info(a), info(b)])
      return direct(ia, b.peerId) && direct(ib, a.peerId) ? true : undefined
    }, 90_000, describeTabs)
    const ia = await info(a)
    const conn = ia.connections.find(c => c.remotePeer === b.peerId && c.multiplexer === '/webrtc' && !c.limited)
    expect(conn?.remoteAddr).toMatch(/\/webrtc\/p2p\//)
    expect(ia.runtime.name).toBe('chrome')
  })

  it('the bootstrap\'s /api/mesh lists both tabs with their browser runtime (chrome), alive', async () => {
    const view = await waitFor('both tabs alive in /api/mesh', async () => {
      const v = await apiMesh()
      return tabs.every(t => v.peers.some(p => p.peerId === t.peerId && p.runtime.name === 'chrome' && p.status === 'alive')) ? v : undefined
    }, 60_000, async () => JSON.stringify(await apiMesh()))
    for (const t of tabs) expect(view.peers.find(p => p.peerId === t.peerId)).toMatchObject({ runtime: { name: 'chrome' }, status: 'alive' })
    expect(view.peers.find(p => p.peerId === bootInfo.peerId)).toMatchObject({ runtime: { name: 'node' } })
  })

  it('after the bootstrap is killed, the two tabs elect a browser coordinator', async () => {
    const everyone = [bootInfo.peerId, ...tabs.map(t => t.peerId)]
    // the bootstrap coordinates first and adds each tab to the voting configuration
    const before = await waitFor('the bootstrap as coordinator with both tabs in the configuration', async () => {
      const all = await Promise.all(tabs.map(info))
      return all.every(i => i.coordinator === bootInfo.peerId && everyone.every(p => i.config.includes(p))) ? all[0] : undefined
    }, 60_000, describeTabs)
    expect(before.config.sort()).toEqual([...everyone].sort())

    bootstrap!.kill('SIGKILL')
    await bootstrapExited

    const after = await waitFor('a tab elected coordinator by both tabs', async () => {
      const all = await Promise.all(tabs.map(info))
      const c = all[0].coordinator
      return c !== null && c !== bootInfo.peerId && all.every(i => i.coordinator === c && i.term === all[0].term && i.term > before.term) ? all : undefined
    }, 60_000, describeTabs)
    const winner = after[0].coordinator!
    expect(tabs.map(t => t.peerId)).toContain(winner)
    const winnerTab = after.find(i => i.peerId === winner)!
    expect(winnerTab.role).toBe('coordinator')
    expect(winnerTab.runtime.name).toBe('chrome')
    expect(after.find(i => i.peerId !== winner)!.role).toBe('follower')
    // the configuration still has 3 voters: the winner needed the other tab's vote (2 of 3)
    expect(winnerTab.config.length).toBe(3)
    // and the tabs still reach each other directly (the relayed path died with the bootstrap)
    expect(direct(after[0], tabs[1].peerId)).toBe(true)
  })
})
