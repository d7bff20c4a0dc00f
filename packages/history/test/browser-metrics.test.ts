// Tab summaries over real gossipsub into a real DuckDB file: a recording node (the
// bootstrap's recorder) and a second libp2p peer with the mesh's gossip settings standing in
// for a tab, publishing on the mesh's `metrics` topic as a tab does.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createMeshPeer, topicName } from '@shardmesh/mesh'
import type { MeshNode } from '@shardmesh/mesh'
import { BrowserMetrics, encodeTabSummary, historyPeers, historyRecorder, MAX_TAB_SUMMARY_BYTES, openHistory, TAB_METRICS, TAB_SUMMARY_MIN_GAP_MS } from '../src/index.ts'
import type { HistoryRecorder, HistoryStore, Rows, TabSummary } from '../src/index.ts'

const dir = mkdtempSync(join(tmpdir(), 'history-tabs-'))
const meshId = `tabs-${process.pid}`
const topic = topicName(meshId, 'metrics')
let store: HistoryStore
let node: MeshNode
let tab: MeshNode
let recorder: HistoryRecorder

const summary = (seq: number, tokens: number): TabSummary => ({
  type: 'tab-summary', v: 1, seq, at: 1_765_000_000_000 + seq, browser: 'chrome', version: '142', backend: 'webgpu', adapter: 'SwiftShader Device (Subzero)',
  metrics: { bench_decode_tps: 118.9, tokens, passes: 4, busy_ms: 20.5, hidden: 0 }
})

async function until<T> (what: string, fn: () => T | undefined | false, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = fn()
    if (v !== undefined && v !== false) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

beforeAll(async () => {
  store = await openHistory({ path: join(dir, 'h.duckdb') })
  node = await createMeshPeer({ meshId })
  tab = await createMeshPeer({ meshId, bootstrap: [node.getMultiaddrs()[0].toString()] })
  recorder = await historyRecorder({ store, self: node.peerId.toString(), mesh: node.services.mesh, tabSummaries: { pubsub: node.services.pubsub, topic, minGapMs: 0 } }) // the rate limit has its own test below
  // the recorder's subscription must reach the tab before it publishes (as after a tab joins)
  await until('the tab to see the recorder subscribed', () => tab.services.pubsub.getSubscribers(topic).some(p => p.equals(node.peerId)))
}, 60_000)

afterAll(async () => {
  recorder?.stop()
  await Promise.all([node?.stop(), tab?.stop()])
  await store?.close()
  rmSync(dir, { recursive: true, force: true })
})

describe('tab summaries into browser_metrics', () => {
  it('persists one row per metric, attributed to the gossipsub signer, with units; a re-sent summary is not written twice', async () => {
    const first = summary(1, 96)
    await tab.services.pubsub.publish(topic, encodeTabSummary(first))
    await until('the summary recorded', () => recorder.tabSummaryStats()!.recorded === 1)
    const rows = await store.query('SELECT node, peer, browser, version, backend, adapter, metric, value, unit FROM browser_metrics ORDER BY metric')
    expect(rows).toHaveLength(Object.keys(first.metrics).length)
    for (const r of rows) {
      expect(r).toMatchObject({ node: node.peerId.toString(), peer: tab.peerId.toString(), browser: 'chrome', version: '142', backend: 'webgpu', adapter: 'SwiftShader Device (Subzero)' })
      expect(r.value).toBe(first.metrics[r.metric as keyof TabSummary['metrics']])
      expect(r.unit).toBe(TAB_METRICS[r.metric as keyof typeof TAB_METRICS])
    }
    // the same summary again (a tab re-sends one that reached nobody): counted, not written
    await tab.services.pubsub.publish(topic, encodeTabSummary(first))
    await until('the repeat counted', () => recorder.tabSummaryStats()!.repeated === 1)
    expect((await store.query('SELECT count(*)::INTEGER AS n FROM browser_metrics'))[0].n).toBe(rows.length)
  })

  it('GET /api/history/peers shows the tab\'s latest metrics (historyPeers `browser`)', async () => {
    const { browser } = await historyPeers(store)
    expect(browser).toHaveLength(1)
    expect(browser[0]).toMatchObject({ peer: tab.peerId.toString(), browser: 'chrome', backend: 'webgpu', summaries: 1 })
    expect(browser[0].metrics.bench_decode_tps).toEqual({ value: 118.9, unit: 'tokens/s' })
    expect(browser[0].metrics.tokens).toEqual({ value: 96, unit: 'tokens' })
  })

  it('refuses bad and oversize summaries before they are forwarded, counts them by reason, and the node goes on', async () => {
    const before = (await store.query('SELECT count(*)::INTEGER AS n FROM browser_metrics'))[0].n
    const bad: Array<[string, Uint8Array]> = [
      ['oversized', new Uint8Array(MAX_TAB_SUMMARY_BYTES + 1).fill(0x20)],
      ['malformed', new TextEncoder().encode('{"type":"tab-summary",')],
      ['version', new TextEncoder().encode(JSON.stringify({ ...summary(2, 1), v: 2 }))]
    ]
    // three at most: each rejection lowers the sender's gossipsub score (-10 × count²), and a
    // fourth would leave the tab graylisted (< -80) and its messages dropped before validation
    for (const [, data] of bad) await tab.services.pubsub.publish(topic, data)
    const rejected = await until('three rejections', () => {
      const r = recorder.tabSummaryStats()!.rejected
      return Object.values(r).reduce((a, b) => a + b, 0) === 3 ? r : undefined
    })
    expect(rejected).toEqual({ oversized: 1, malformed: 1, version: 1 })
    expect((await store.query('SELECT count(*)::INTEGER AS n FROM browser_metrics'))[0].n).toBe(before)
    // the node goes on: a good summary after the bad ones is recorded
    expect(node.status).toBe('started')
    await tab.services.pubsub.publish(topic, encodeTabSummary(summary(5, 160)))
    await until('the next good summary recorded', () => recorder.tabSummaryStats()!.recorded === 2)
    expect((await store.query("SELECT value FROM browser_metrics WHERE metric = 'tokens' ORDER BY ts")).map(r => r.value)).toEqual([96, 160])
  })
})

describe('BrowserMetrics.record', () => {
  const rows: Array<Rows['browser_metrics']> = []
  const write = async (_table: string, row: unknown): Promise<void> => { rows.push(row as Rows['browser_metrics']) }

  it('writes at most one summary per tab per TAB_SUMMARY_MIN_GAP_MS, and none from an unadmitted peer', () => {
    const b = new BrowserMetrics({ pubsub: undefined as never, topic, self: 'node', write, admitted: peer => peer !== 'stranger' })
    b.record(summary(1, 10), 'tab-a', 1_000_000)
    b.record(summary(2, 20), 'tab-a', 1_000_000 + TAB_SUMMARY_MIN_GAP_MS - 1) // too soon
    b.record(summary(3, 30), 'tab-a', 1_000_000 + TAB_SUMMARY_MIN_GAP_MS)
    b.record(summary(3, 30), 'tab-b', 1_000_000) // another tab is limited on its own
    b.record(summary(1, 10), 'stranger', 1_000_000)
    expect(b.stats()).toEqual({ received: 5, recorded: 3, repeated: 0, rateLimited: 1, rejected: { unadmitted: 1 } })
    const tokens = rows.filter(r => r.metric === 'tokens').map(r => [r.peer, r.value, r.ts])
    expect(tokens).toEqual([['tab-a', 10, 1_000_000], ['tab-a', 30, 1_000_000 + TAB_SUMMARY_MIN_GAP_MS], ['tab-b', 30, 1_000_000]])
  })
})
