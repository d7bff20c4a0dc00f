import { afterEach, describe, expect, it, vi } from 'vitest'
import { decodeTabSummary, TAB_KEEPALIVE_MS, TAB_RETRY_MS, TAB_SAMPLE_MS, TabRecorder } from '../src/tab/index.ts'
import type { TabRecord, TabSample, TabSummary } from '../src/tab/index.ts'

/** The recorder's store is `Pick<TabHistory, 'add'>`: an array stands in for IndexedDB (the real one is tested in Chromium, test/browser/tab-history.test.ts). */
function memoryStore (): { add: (r: Omit<TabRecord, 'id'>) => Promise<number>, records: TabRecord[] } {
  const records: TabRecord[] = []
  return { records, add: async r => { records.push({ ...r, id: records.length + 1 }); return records.length } }
}

afterEach(() => { vi.useRealTimers() })

describe('tab recorder', () => {
  it('stores a record when a metric changes (not for drifting ones alone) or the keepalive passes, and publishes each', async () => {
    vi.useFakeTimers({ now: 1_000_000 })
    const store = memoryStore()
    const sent: TabSummary[] = []
    let sample: TabSample = { browser: 'chrome', version: '142', backend: 'webgpu', adapter: 'SwiftShader', metrics: { bench_decode_tps: 118.9, tokens: 0, js_heap_bytes: 1000 } }
    const r = new TabRecorder({ store, peer: 'tab', sample: () => sample, publish: async data => { sent.push(decodeTabSummary(data)); return 1 } })
    await r.tick()
    expect(store.records).toHaveLength(1)
    expect(sent.map(s => [s.seq, s.at, s.metrics.tokens])).toEqual([[1, 1_000_000, 0]])
    sample = { ...sample, metrics: { ...sample.metrics, js_heap_bytes: 2000 } } // drift only
    await vi.advanceTimersByTimeAsync(TAB_SAMPLE_MS)
    await r.tick()
    expect(store.records).toHaveLength(1)
    sample = { ...sample, metrics: { ...sample.metrics, tokens: 16 } }
    await r.tick()
    expect(store.records.map(x => x.metrics.tokens)).toEqual([0, 16])
    expect(store.records[1].metrics.js_heap_bytes).toBe(2000)
    await vi.advanceTimersByTimeAsync(TAB_KEEPALIVE_MS)
    await r.tick()
    expect(store.records).toHaveLength(3)
    expect(sent.map(s => s.seq)).toEqual([1, 2, 3])
    expect(r.stats()).toMatchObject({ records: 3, published: 3, unsent: 0, lastSeq: 3, lastRecipients: 1 })
    expect(r.stats().lastBytes).toBeGreaterThan(100)
  })

  it('sends a summary that reached no peer again after 1 s, 2 s, 4 s…, then with the next sample; stop ends it', async () => {
    vi.useFakeTimers({ now: 1_000_000 })
    const store = memoryStore()
    const tries: number[] = []
    let peers = 0
    const r = new TabRecorder({ store, peer: 'tab', sample: () => ({ browser: 'chrome', version: '', backend: 'cpu', adapter: null, metrics: { tokens: 1 } }), publish: async () => { tries.push(Date.now()); return peers } })
    r.start()
    await vi.advanceTimersByTimeAsync(0)
    await vi.advanceTimersByTimeAsync(TAB_RETRY_MS + 2 * TAB_RETRY_MS)
    expect(tries.map(t => t - 1_000_000)).toEqual([0, TAB_RETRY_MS, 3 * TAB_RETRY_MS])
    peers = 1 // a recording node subscribed
    await vi.advanceTimersByTimeAsync(4 * TAB_RETRY_MS)
    expect(r.stats()).toMatchObject({ records: 1, published: 1, unsent: 3 })
    await vi.advanceTimersByTimeAsync(TAB_SAMPLE_MS)
    expect(tries).toHaveLength(4) // nothing changed, nothing left to send
    r.stop()
    await vi.advanceTimersByTimeAsync(TAB_KEEPALIVE_MS * 2)
    expect(store.records).toHaveLength(1)
    expect(tries).toHaveLength(4)
  })

  it('reports a failing store or publish through onError and keeps going', async () => {
    const errors: string[] = []
    let fail = true
    const store = { add: async () => { if (fail) throw new Error('quota'); return 7 } }
    const r = new TabRecorder({ store, peer: 'tab', sample: () => ({ browser: 'chrome', version: '', backend: 'cpu', adapter: null, metrics: {} }), publish: async () => 1, onError: e => errors.push(e.message) })
    await r.tick()
    fail = false
    await r.tick()
    expect(errors).toEqual(['quota'])
    expect(r.stats()).toMatchObject({ records: 1, published: 1, lastSeq: 7 })
  })
})
