import { ANALYSIS_WINDOW_MS, ANOMALY_MIN_HISTORY, ANOMALY_Z, RECENT_SAMPLES } from './constants.ts'
import { capabilityScores, detectAnomalies, recommend, trends } from './analysis.ts'
import type { Anomaly, CapabilityScore, Recommendation, RecoveryRow, Sample, Trend } from './analysis.ts'
import { LATEST_VERSION } from './schema.ts'
import { TABLES } from './tables.ts'
import type { HistoryStore, JsonRow } from './store.ts'

/** What the reports read of a store. */
export type HistoryReader = Pick<HistoryStore, 'query' | 'readOnly' | 'path'>

const num = (v: unknown): number => Number(v)

/**
 * Decode throughput samples of the last `ANALYSIS_WINDOW_MS`, of the benchmark model most
 * samples were taken on (speeds of different models do not compare).
 */
export async function decodeSamples (store: HistoryReader, now = Date.now()): Promise<Sample[]> {
  const rows = await store.query(`
    SELECT peer, epoch_ms(ts) AS ms, value, runtime, backend FROM peer_samples
    WHERE op = 'decode' AND ts >= epoch_ms(?::BIGINT)
      AND model = (SELECT model FROM peer_samples WHERE op = 'decode' GROUP BY model ORDER BY count(*) DESC, model LIMIT 1)
    ORDER BY ts`, [now - ANALYSIS_WINDOW_MS])
  return rows.map(r => ({ peer: String(r.peer), at: num(r.ms), value: num(r.value), runtime: String(r.runtime), backend: String(r.backend) }))
}

async function recoveryRows (store: HistoryReader, now: number): Promise<RecoveryRow[]> {
  const rows = await store.query('SELECT failed, strategy, ok, stall_ms FROM recovery_events WHERE ts >= epoch_ms(?::BIGINT)', [now - ANALYSIS_WINDOW_MS])
  return rows.map(r => ({ failed: JSON.parse(String(r.failed)) as string[], strategy: String(r.strategy), ok: r.ok === true, stallMs: num(r.stall_ms) }))
}

async function latestPlan (store: HistoryReader): Promise<JsonRow | null> {
  const [run] = await store.query('SELECT * FROM sharding_runs ORDER BY ts DESC, plan_version DESC LIMIT 1')
  if (run === undefined) return null
  const stages = await store.query('SELECT stage, l0, l1, peer, standbys, bytes, reason FROM plan_stages WHERE run_id = ? ORDER BY stage', [String(run.id)])
  return { ...run, stages: stages.map(s => ({ ...s, standbys: JSON.parse(String(s.standbys)) })) }
}

export interface HistorySummary {
  path: string
  schemaVersion: number
  counts: Record<string, number>
  latestPlan: JsonRow | null
  plans: JsonRow[]
  generations: { count: number, medianDecodeTps: number | null, medianPrefillTps: number | null, recent: JsonRow[] }
  /** Timings by scope and component: count and median ms. */
  timings: JsonRow[]
  recoveries: { count: number, byStrategy: JsonRow[] }
}

/** `shardmesh history summary` and `GET /api/history/summary`. */
export async function historySummary (store: HistoryReader): Promise<HistorySummary> {
  const counts: Record<string, number> = {}
  for (const t of TABLES) counts[t] = num((await store.query(`SELECT count(*) AS n FROM ${t}`))[0].n)
  const [g] = await store.query('SELECT count(*) AS n, median(decode_tps) AS decode, median(prefill_tps) AS prefill FROM generations')
  const recent = await store.query('SELECT id, ts, model, plan_version, route, prompt_tokens, tokens, finish_reason, recoveries, prefill_ms, decode_ms, prefill_tps, decode_tps FROM generations ORDER BY ts DESC LIMIT 10')
  const [rc] = await store.query('SELECT count(*) AS n FROM recovery_events')
  return {
    path: store.path,
    schemaVersion: LATEST_VERSION,
    counts,
    latestPlan: await latestPlan(store),
    plans: await store.query('SELECT id, ts, model, plan_version, strategy, n_layers, coordinator, term, stages FROM sharding_runs ORDER BY ts DESC LIMIT 10'),
    generations: {
      count: num(g.n),
      medianDecodeTps: g.decode === null ? null : num(g.decode),
      medianPrefillTps: g.prefill === null ? null : num(g.prefill),
      recent: recent.map(r => ({ ...r, route: JSON.parse(String(r.route)) }))
    },
    timings: await store.query('SELECT scope, component, count(*) AS count, median(ms) AS median_ms, quantile_cont(ms, 0.9) AS p90_ms FROM timings GROUP BY scope, component ORDER BY scope, component'),
    recoveries: {
      count: num(rc.n),
      byStrategy: await store.query('SELECT strategy, path, count(*) AS count, avg(ok::INTEGER) AS success_rate, median(stall_ms) AS median_stall_ms FROM recovery_events GROUP BY strategy, path ORDER BY count DESC')
    }
  }
}

export interface PeerReport {
  peer: string
  samples: number
  latest: number
  score: CapabilityScore | undefined
  trend: Trend | undefined
  anomaly: Anomaly | undefined
  status: string | null
}

/** A browser tab's latest recorded summary (`browser` of `historyPeers`). */
export interface BrowserTabReport {
  peer: string
  browser: string
  version: string | null
  backend: string
  adapter: string | null
  /** When this node recorded the tab's newest summary (ms since the epoch). */
  lastAt: number
  /** Summaries recorded from this tab in the analysis window. */
  summaries: number
  /** Each metric's newest value, with its unit. */
  metrics: Record<string, { value: number, unit: string | null }>
}

/** Tabs shown by `historyPeers`, the most recently heard first. */
export const BROWSER_TABS_SHOWN = 50

/** The latest metrics of each browser tab heard in the analysis window (`browser_metrics`). */
export async function browserTabs (store: HistoryReader, now = Date.now()): Promise<BrowserTabReport[]> {
  const since = now - ANALYSIS_WINDOW_MS
  const tabs = await store.query(`
    SELECT peer, browser, version, backend, adapter, epoch_ms(ts)::DOUBLE AS last_at FROM browser_metrics
    WHERE ts >= epoch_ms(?::BIGINT)
    QUALIFY row_number() OVER (PARTITION BY peer ORDER BY ts DESC) = 1
    ORDER BY ts DESC, peer LIMIT ${BROWSER_TABS_SHOWN}`, [since])
  if (tabs.length === 0) return []
  const counts = new Map((await store.query('SELECT peer, count(DISTINCT ts)::INTEGER AS n FROM browser_metrics WHERE ts >= epoch_ms(?::BIGINT) GROUP BY peer', [since])).map(r => [String(r.peer), num(r.n)]))
  const metrics = new Map<string, BrowserTabReport['metrics']>()
  for (const r of await store.query(`
    SELECT peer, metric, value, unit FROM browser_metrics WHERE ts >= epoch_ms(?::BIGINT)
    QUALIFY row_number() OVER (PARTITION BY peer, metric ORDER BY ts DESC) = 1`, [since])) {
    const m = metrics.get(String(r.peer)) ?? {}
    m[String(r.metric)] = { value: num(r.value), unit: r.unit === null ? null : String(r.unit) }
    metrics.set(String(r.peer), m)
  }
  return tabs.map(t => ({
    peer: String(t.peer),
    browser: String(t.browser),
    version: t.version === null ? null : String(t.version),
    backend: String(t.backend),
    adapter: t.adapter === null ? null : String(t.adapter),
    lastAt: num(t.last_at),
    summaries: counts.get(String(t.peer)) ?? 0,
    metrics: metrics.get(String(t.peer)) ?? {}
  }))
}

/**
 * `shardmesh history peers` and `GET /api/history/peers`: each peer's samples, score, trend,
 * anomaly and last status; and `browser`, each browser tab's latest metrics.
 */
export async function historyPeers (store: HistoryReader, now = Date.now()): Promise<{ peers: PeerReport[], browser: BrowserTabReport[] }> {
  const samples = await decodeSamples(store, now)
  const scores = capabilityScores(samples)
  const tr = trends(samples)
  const an = detectAnomalies(samples)
  const status = new Map((await store.query('SELECT peer, arg_max(status, ts) AS status FROM peer_events GROUP BY peer')).map(r => [String(r.peer), String(r.status)]))
  const peers = [...new Set(samples.map(s => s.peer))].map(peer => {
    const mine = samples.filter(s => s.peer === peer)
    return { peer, samples: mine.length, latest: mine[mine.length - 1].value, score: scores.find(s => s.peer === peer), trend: tr.find(t => t.peer === peer), anomaly: an.find(a => a.peer === peer), status: status.get(peer) ?? null }
  })
  return { peers: peers.sort((a, b) => (b.score?.score ?? 0) - (a.score?.score ?? 0)), browser: await browserTabs(store, now) }
}

/** `shardmesh history anomalies` and `GET /api/history/anomalies`: flagged peers, with the rule. */
export async function historyAnomalies (store: HistoryReader, now = Date.now()): Promise<{ rule: string, threshold: { z: number, minHistory: number, recent: number }, evaluated: number, anomalies: Anomaly[], degrading: Trend[] }> {
  const samples = await decodeSamples(store, now)
  const all = detectAnomalies(samples)
  return {
    rule: `|median(last ${RECENT_SAMPLES}) − median(earlier)| / (1.4826 × MAD(earlier)) ≥ ${ANOMALY_Z}, with ≥ ${ANOMALY_MIN_HISTORY} earlier samples`,
    threshold: { z: ANOMALY_Z, minHistory: ANOMALY_MIN_HISTORY, recent: RECENT_SAMPLES },
    evaluated: all.length,
    anomalies: all.filter(a => a.flagged),
    degrading: trends(samples).filter(t => t.degrading)
  }
}

/**
 * `shardmesh history recommend` and `GET /api/history/recommendations`: scores and
 * recommendations now; written to `capability_scores` and `recommendations` when `persist`
 * (a store open read-write).
 */
export async function historyRecommendations (store: HistoryReader & Partial<Pick<HistoryStore, 'append'>>, options: { persist?: boolean, now?: number } = {}): Promise<{ at: number, scores: CapabilityScore[], recommendations: Recommendation[] }> {
  const now = options.now ?? Date.now()
  const samples = await decodeSamples(store, now)
  const scores = capabilityScores(samples)
  const plan = await latestPlan(store)
  const recs = recommend({
    scores,
    anomalies: detectAnomalies(samples),
    recoveries: await recoveryRows(store, now),
    model: plan === null ? undefined : { name: String(plan.model), nLayers: num(plan.n_layers) }
  })
  if (options.persist === true && !store.readOnly && store.append !== undefined) {
    const writes = [
      ...scores.map(async s => await store.append!('capability_scores', { ts: now, peer: s.peer, runtime: s.runtime, backend: s.backend, score: s.score, confidence: s.confidence, samples: s.samples, speed: s.speed, basis: `median of the last ${RECENT_SAMPLES} decode samples vs the fastest peer` })),
      ...recs.map(async r => await store.append!('recommendations', { ts: now, kind: r.kind, subject: r.subject, model: r.model ?? null, value: r.value, reason: r.reason }))
    ]
    await Promise.all(writes)
  }
  return { at: now, scores, recommendations: recs }
}
