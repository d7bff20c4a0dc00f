import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { historyAnomalies, historyPeers, historyRecommendations, historySummary, openHistory } from '../src/index.ts'
import type { HistoryStore } from '../src/index.ts'

const dir = mkdtempSync(join(tmpdir(), 'history-report-'))
let store: HistoryStore
const now = Date.now()

beforeAll(async () => {
  store = await openHistory({ path: join(dir, 'h.duckdb') })
  const writes: Array<Promise<void>> = []
  // three peers, 25 decode samples each a minute apart; peer "slow" loses 60% in its last five
  for (const peer of ['fast', 'other', 'slow']) {
    for (let i = 0; i < 25; i++) {
      const value = (100 + (i % 3) - 1) * (peer === 'slow' && i >= 20 ? 0.4 : 1)
      writes.push(store.append('peer_samples', { ts: now - (25 - i) * 60_000, node: 'n', peer, runtime: 'node', backend: 'cpu', model: 'tiny', op: 'decode', value, unit: 'tokens/s', source: 'test' }))
    }
  }
  writes.push(store.append('sharding_runs', { id: 'r1', ts: now - 1000, node: 'n', model: 'm', plan_version: 3, strategy: 'balanced', n_layers: 6, coordinator: 'fast', term: 2, stages: 2 }))
  writes.push(store.append('plan_stages', { run_id: 'r1', stage: 0, l0: 0, l1: 3, peer: 'fast', standbys: ['slow'], bytes: 10, reason: 'x' }))
  writes.push(store.append('plan_stages', { run_id: 'r1', stage: 1, l0: 3, l1: 6, peer: 'other', standbys: [], bytes: 10, reason: 'y' }))
  await Promise.all(writes)
})

afterAll(async () => {
  await store.close()
  rmSync(dir, { recursive: true, force: true })
})

describe('history reports over a real file', () => {
  it('anomalies: the injected slow series is flagged, with the rule stated', async () => {
    const r = await historyAnomalies(store)
    expect(r.evaluated).toBe(3)
    expect(r.anomalies.map(a => a.peer)).toEqual(['slow'])
    expect(r.rule).toMatch(/≥ 3/)
  })

  it('peers and summary show scores, the latest plan with its stages, and row counts', async () => {
    const { peers } = await historyPeers(store)
    expect(peers.map(p => p.peer)).toHaveLength(3)
    expect(peers[peers.length - 1].peer).toBe('slow')
    expect(peers.find(p => p.peer === 'slow')?.anomaly?.flagged).toBe(true)
    const s = await historySummary(store)
    expect(s.counts.peer_samples).toBe(75)
    expect(s.latestPlan).toMatchObject({ plan_version: 3, model: 'm', strategy: 'balanced' })
    expect((s.latestPlan as { stages: Array<{ peer: string }> }).stages.map(x => x.peer)).toEqual(['fast', 'other'])
  })

  it('recommendations are stored when asked: avoid the slow peer, layers of the latest plan\'s model for the others', async () => {
    const r = await historyRecommendations(store, { persist: true })
    expect(r.recommendations.filter(x => x.kind === 'avoid').map(x => x.subject)).toEqual(['slow'])
    expect(r.recommendations.filter(x => x.kind === 'layers').every(x => x.model === 'm' && x.subject !== 'slow')).toBe(true)
    const [scores] = await store.query('SELECT count(*) AS n FROM capability_scores')
    const [recs] = await store.query("SELECT count(*) AS n FROM recommendations WHERE kind = 'avoid' AND subject = 'slow'")
    expect(scores.n).toBe('3')
    expect(recs.n).toBe('1')
  })
})
