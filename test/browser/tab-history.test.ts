// A browser tab's performance history end to end, in Debian's Chromium:
// 1. the IndexedDB store of @shardmesh/history/tab on its own (esbuild bundle on a plain page):
//    bounded, kept across a reload, refuses a database from a newer page;
// 2. the peer page on a real mesh (`shardmesh start`, recording into its default --db
//    <store>/history/bootstrap.duckdb, in a test-made network namespace): two tabs serve
//    stories260K; each keeps its own records in IndexedDB (read here with the raw IndexedDB
//    API through page.evaluate), they survive a reload, and the bootstrap's DuckDB — read
//    through the running node's GET /api/history/peers, DuckDB being single-writer — holds
//    browser_metrics rows from each tab's peer id with the values the tab measured.
import { join } from 'node:path'
import { build } from 'esbuild'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Page } from 'puppeteer-core'
import type { TabRecord, TabRecorderStats } from '@shardmesh/history/tab'
import { repoRoot, storiesDir } from '../fixtures.ts'
import { launchChromium } from './chromium.ts'
import type { Chromium } from './chromium.ts'
import { PeerMesh, waitFor } from './peer-mesh.ts'
import type { Tab } from './peer-mesh.ts'
import { serveRoutes } from './server.ts'
import type { StaticServer } from './server.ts'

const gguf = join(storiesDir(), 'stories260K.gguf')

/** Every record of the page's origin in `db`, read with the raw IndexedDB API (not the app's code). */
async function idbRecords (page: Page, db = 'shardmesh-history'): Promise<TabRecord[]> {
  return await page.evaluate(async (name: string) => await new Promise<TabRecord[]>((resolve, reject) => {
    const open = indexedDB.open(name)
    open.onerror = () => { reject(open.error) }
    open.onsuccess = () => {
      const d = open.result
      if (!d.objectStoreNames.contains('records')) { d.close(); resolve([]); return }
      const req = d.transaction('records', 'readonly').objectStore('records').getAll()
      req.onsuccess = () => { d.close(); resolve(req.result as TabRecord[]) }
      req.onerror = () => { d.close(); reject(req.error) }
    }
  }), db)
}

describe('the tab history store in Chromium\'s IndexedDB', () => {
  let chromium: Chromium
  let server: StaticServer
  let page: Page

  beforeAll(async () => {
    const bundle = await build({ entryPoints: [join(repoRoot, 'packages/history/src/tab/index.ts')], bundle: true, format: 'iife', globalName: 'tabHistory', platform: 'browser', target: 'es2022', write: false, logLevel: 'silent' })
    server = await serveRoutes({
      '/': { type: 'text/html', body: '<!doctype html><meta charset="utf-8"><title>tab history</title><script src="/tab-history.js"></script>' },
      '/tab-history.js': { type: 'text/javascript', body: bundle.outputFiles[0].text }
    })
    chromium = await launchChromium()
    page = await chromium.browser.newPage()
    await page.goto(server.url + '/')
    await page.waitForFunction('globalThis.tabHistory !== undefined')
  }, 60_000)

  afterAll(async () => {
    await chromium?.close()
    await server?.close()
  })

  it('keeps at most maxRecords (the oldest go), lists a peer\'s records oldest first, and keeps them across a reload', async () => {
    const ids = await page.evaluate(async () => {
      const h = await (globalThis as any).tabHistory.openTabHistory({ name: 'bound', maxRecords: 5 })
      const out: number[] = []
      for (let i = 0; i < 12; i++) out.push(await h.add({ at: 1000 + i, peer: i % 2 === 0 ? 'even' : 'odd', browser: 'chrome', version: '1', backend: 'cpu', adapter: null, metrics: { tokens: i } }))
      h.close()
      return out
    })
    expect(ids).toEqual(Array.from({ length: 12 }, (_, i) => i + 1))
    await page.reload()
    await page.waitForFunction('globalThis.tabHistory !== undefined')
    const after = await page.evaluate(async () => {
      const h = await (globalThis as any).tabHistory.openTabHistory({ name: 'bound', maxRecords: 5 })
      const r = { count: await h.count(), all: (await h.list()).map((x: any) => x.metrics.tokens), even: (await h.list({ peer: 'even' })).map((x: any) => x.id), last2: (await h.list({ limit: 2 })).map((x: any) => x.id) }
      h.close()
      return r
    })
    expect(after).toEqual({ count: 5, all: [7, 8, 9, 10, 11], even: [9, 11], last2: [11, 12] })
    // the raw database agrees
    expect((await idbRecords(page, 'bound')).map(r => r.id)).toEqual([8, 9, 10, 11, 12])
  })

  it('refuses a history written by a newer page (a higher IndexedDB version) with TabHistoryError', async () => {
    const err = await page.evaluate(async () => {
      await new Promise<void>((resolve, reject) => {
        const req = indexedDB.open('newer', 99)
        req.onsuccess = () => { req.result.close(); resolve() }
        req.onerror = () => { reject(req.error) }
      })
      try {
        await (globalThis as any).tabHistory.openTabHistory({ name: 'newer' })
        return 'opened'
      } catch (e) {
        return `${(e as Error).name}: ${(e as Error).message}`
      }
    })
    expect(err).toMatch(/^TabHistoryError: the tab history newer is at a version above 1/)
  })
})

interface PeerSide { peerId: string, bench: number, history: TabRecorderStats | { error: string } | undefined }
interface BrowserTab { peer: string, browser: string, backend: string, adapter: string | null, summaries: number, metrics: Record<string, { value: number, unit: string | null }> }

describe('tabs record their metrics in IndexedDB and publish summaries the bootstrap persists', () => {
  const m = new PeerMesh()
  beforeAll(async () => { await m.start({ model: gguf, tabs: 2, ftLevel: 'low', pageBuild: 'tab-history' }) }, 180_000)
  afterAll(async () => { await m.stop() }, 60_000)

  const side = async (tab: Tab): Promise<PeerSide> => {
    const s = await m.status(tab)
    return { peerId: s.peerId!, bench: s.benchTokensPerSecond!, history: s.history }
  }
  const mine = async (tab: Tab, peerId: string): Promise<TabRecord[]> => (await idbRecords(tab.page)).filter(r => r.peer === peerId)
  const browserTabs = async (): Promise<{ browser: BrowserTab[], tabSummaries: { recorded: number, rejected: Record<string, number> } }> => await m.http('/api/history/peers')

  it('each tab\'s records and the bootstrap\'s browser_metrics rows carry what the tab measured', async () => {
    await waitFor('a 2-stage plan served by both tabs', async () => {
      const v = await m.mesh()
      const statuses = await Promise.all(m.tabs.map(async t => await m.status(t)))
      if (statuses.some(s => s.state === 'error')) throw new Error(`a tab failed: ${statuses.map(s => s.error).join('; ')}`)
      return v.plan?.stages.length === 2 && statuses.every(s => s.state === 'serving') ? true : undefined
    }, 150_000, async () => await m.describe())
    // the tabs compute for the mesh: their token counts grow
    const model = (await m.http('/v1/models')).data[0].id as string
    const r = await m.http('/v1/completions', { model, prompt: 'Once upon a time', max_tokens: 16, temperature: 0 })
    expect(r.choices[0].text.length).toBeGreaterThan(0)

    const sides = await Promise.all(m.tabs.map(side))
    for (const s of sides) expect(s.bench).toBeGreaterThan(0)
    // (a) each tab's IndexedDB holds its own records, sampled every 10 s: wait for one after the completion
    const records = await Promise.all(m.tabs.map(async (tab, i) => await waitFor(`tab ${i}'s record of its compute`, async () => {
      const rs = await mine(tab, sides[i].peerId)
      return rs.some(x => (x.metrics.tokens ?? 0) > 0) ? rs : undefined
    }, 60_000, async () => JSON.stringify(await side(tab)))))
    for (const [i, rs] of records.entries()) {
      for (const x of rs) {
        expect(x).toMatchObject({ peer: sides[i].peerId, browser: 'chrome', backend: 'webgpu' })
        expect(x.metrics.bench_decode_tps).toBe(sides[i].bench)
        expect(x.metrics.memory_budget_bytes).toBeGreaterThan(0)
        expect([0, 1]).toContain(x.metrics.hidden)
      }
      const computed = rs.filter(x => (x.metrics.tokens ?? 0) > 0)
      expect(computed[0].metrics.stage_layers).toBeGreaterThan(0)
      expect(computed[0].metrics.passes).toBeGreaterThan(0)
      expect(computed[0].metrics.pass_ms_p90).toBeGreaterThanOrEqual(computed[0].metrics.pass_ms_p50!)
      expect(computed[0].metrics.serving_tps).toBeGreaterThan(0)
    }

    // (b) the bootstrap persisted the tabs' summaries: rows from each tab's peer id (the gossipsub
    // signer) with the tab's own benchmark and a token count one of its records holds
    const report = await waitFor('both tabs\' compute in the bootstrap\'s browser_metrics', async () => {
      const rep = await browserTabs()
      return sides.every(s => (rep.browser.find(b => b.peer === s.peerId)?.metrics.tokens?.value ?? 0) > 0) ? rep : undefined
    }, 60_000, async () => JSON.stringify(await browserTabs()))
    for (const [i, s] of sides.entries()) {
      const b = report.browser.find(x => x.peer === s.peerId)!
      expect(b).toMatchObject({ browser: 'chrome', backend: 'webgpu' })
      expect(b.metrics.bench_decode_tps).toEqual({ value: s.bench, unit: 'tokens/s' })
      expect(b.metrics.tokens.unit).toBe('tokens')
      const held = (await mine(m.tabs[i], s.peerId)).map(x => x.metrics.tokens)
      expect(held).toContain(b.metrics.tokens.value)
      expect(b.summaries).toBeGreaterThanOrEqual(1)
      const h = (await side(m.tabs[i])).history as TabRecorderStats
      expect(h.published).toBeGreaterThanOrEqual(1)
      expect(h.lastBytes).toBeLessThanOrEqual(1024)
      console.log(`tab ${i}: ${h.records} records, ${h.published} summaries published (last ${h.lastBytes} B to ${h.lastRecipients} peer(s)); bootstrap recorded ${b.summaries}`)
    }
    expect(report.tabSummaries.rejected).toEqual({})
    const summary = await m.http('/api/history/summary')
    expect(summary.path).toMatch(/history[/\\]bootstrap\.duckdb$/)
    expect(summary.schemaVersion).toBe(3)
    expect(summary.counts.browser_metrics).toBeGreaterThanOrEqual(2 * 5)
  }, 300_000)

  it('a reloaded tab finds its records again (same peer id) and goes on adding to them', async () => {
    const tab = m.tabs[0]
    const before = await side(tab)
    const old = await mine(tab, before.peerId)
    expect(old.length).toBeGreaterThan(0)
    await tab.page.reload()
    await tab.page.waitForFunction('globalThis.shardmeshPeer !== undefined', { timeout: 30_000 })
    const after = await waitFor('the reloaded tab\'s first new record', async () => {
      const s = await side(tab)
      const rs = await mine(tab, s.peerId)
      return rs.some(x => x.id! > old.at(-1)!.id!) ? { s, rs } : undefined
    }, 120_000, async () => await m.describe())
    expect(after.s.peerId).toBe(before.peerId)
    // every record from before the reload is still there, unchanged
    for (const x of old) expect(after.rs.find(y => y.id === x.id)).toEqual(x)
    // and the page's own view agrees (globalThis.shardmeshPeer.history())
    const own = await tab.page.evaluate(async () => await (globalThis as any).shardmeshPeer.history()) as { records: TabRecord[] }
    expect(own.records.map(x => x.id)).toEqual(expect.arrayContaining(old.map(x => x.id)))
    // a new page load counts from zero again: its first record says so
    const fresh = after.rs.filter(x => x.id! > old.at(-1)!.id!)
    expect(fresh[0].metrics.tokens).toBeLessThanOrEqual(old.at(-1)!.metrics.tokens!)
  }, 180_000)
})
