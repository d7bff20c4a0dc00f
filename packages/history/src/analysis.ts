import { ANOMALY_MIN_HISTORY, ANOMALY_Z, AVOID_FAILURES, CONFIDENT_SAMPLES, DEGRADING_PER_HOUR, MIN_RELATIVE_SD, PLANNER_MIN_SAMPLES, RECENT_SAMPLES } from './constants.ts'

/** One throughput sample of a peer (ms since the epoch, higher value = faster). */
export interface Sample {
  peer: string
  at: number
  value: number
  runtime?: string
  backend?: string
}

export interface AnomalyInit {
  /** @default ANOMALY_Z */
  z?: number
  /** @default ANOMALY_MIN_HISTORY */
  minHistory?: number
  /** @default RECENT_SAMPLES */
  recent?: number
}

/** A peer's recent throughput against its own history. */
export interface Anomaly {
  peer: string
  /** Robust z: (median of the recent window − median of the history) / (1.4826 × MAD of the history), the spread floored at MIN_RELATIVE_SD of the median. */
  z: number
  flagged: boolean
  direction: 'slower' | 'faster'
  recent: number
  /** Median of the history. */
  baseline: number
  /** 1.4826 × median absolute deviation of the history (an sd estimate that outliers such as a cold first run do not inflate), floored. */
  spread: number
  /** Samples before the recent window. */
  history: number
  since: number
}

export interface Trend {
  peer: string
  samples: number
  /** Least-squares slope as a fraction of the mean per hour (−0.2: loses 20% of its speed per hour). */
  relativeSlopePerHour: number
  degrading: boolean
  first: number
  last: number
}

export interface CapabilityScore {
  peer: string
  /** 0–100: the peer's recent median speed against the fastest peer's. */
  score: number
  /** 0–1: grows with samples (1 at CONFIDENT_SAMPLES), shrinks with the series' spread. */
  confidence: number
  samples: number
  /** Median of the recent window (tokens/s). */
  speed: number
  runtime: string
  backend: string
}

export interface Recommendation {
  kind: 'avoid' | 'layers' | 'recovery_strategy' | 'strategy'
  /** A peer id, a model, or 'mesh'. */
  subject: string
  model?: string
  value: string
  reason: string
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2
}
/** MAD × this estimates the standard deviation of normally distributed samples. */
const MAD_TO_SD = 1.4826
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length
const sd = (xs: number[]): number => {
  const m = mean(xs)
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / Math.max(1, xs.length - 1))
}

function byPeer (samples: Sample[]): Map<string, Sample[]> {
  const out = new Map<string, Sample[]>()
  for (const s of samples) {
    const list = out.get(s.peer) ?? []
    list.push(s)
    out.set(s.peer, list)
  }
  for (const list of out.values()) list.sort((a, b) => a.at - b.at)
  return out
}

/**
 * Anomalies: for each peer with at least `minHistory` samples before its `recent` most
 * recent ones, z = (median(recent) − median(history)) / (1.4826 × MAD(history)); flagged
 * when |z| ≥ `z`. Median and MAD, not mean and sd: a peer's first samples (a cold JIT, a
 * machine still starting) can be several times off, and with mean and sd one such outlier
 * made the sd larger than a real slowdown (measured: a peer throttled to a tenth of a core
 * went unflagged at z −0.3).
 * Every evaluated peer is returned (flagged or not); peers with too few samples are not.
 */
export function detectAnomalies (samples: Sample[], init: AnomalyInit = {}): Anomaly[] {
  const threshold = init.z ?? ANOMALY_Z
  const minHistory = init.minHistory ?? ANOMALY_MIN_HISTORY
  const window = init.recent ?? RECENT_SAMPLES
  const out: Anomaly[] = []
  for (const [peer, list] of byPeer(samples)) {
    if (list.length < minHistory + window) continue
    const past = list.slice(0, list.length - window).map(s => s.value)
    const recentList = list.slice(-window)
    const m = median(past)
    const s = Math.max(MAD_TO_SD * median(past.map(x => Math.abs(x - m))), MIN_RELATIVE_SD * Math.abs(m), Number.EPSILON)
    const recent = median(recentList.map(x => x.value))
    const z = (recent - m) / s
    out.push({ peer, z, flagged: Math.abs(z) >= threshold, direction: z < 0 ? 'slower' : 'faster', recent, baseline: m, spread: s, history: past.length, since: recentList[0].at })
  }
  return out.sort((a, b) => Math.abs(b.z) - Math.abs(a.z))
}

/** Per peer, the least-squares trend of its throughput over time (peers with ≥ 3 samples over > 0 s). */
export function trends (samples: Sample[]): Trend[] {
  const out: Trend[] = []
  for (const [peer, list] of byPeer(samples)) {
    if (list.length < 3 || list[list.length - 1].at === list[0].at) continue
    const xs = list.map(s => (s.at - list[0].at) / 3_600_000)
    const ys = list.map(s => s.value)
    const mx = mean(xs)
    const my = mean(ys)
    let num = 0
    let den = 0
    for (let i = 0; i < xs.length; i++) { num += (xs[i] - mx) * (ys[i] - my); den += (xs[i] - mx) ** 2 }
    const rel = den === 0 || my === 0 ? 0 : (num / den) / my
    out.push({ peer, samples: list.length, relativeSlopePerHour: rel, degrading: rel <= -DEGRADING_PER_HOUR, first: list[0].at, last: list[list.length - 1].at })
  }
  return out
}

/** Capability scores 0–100 from each peer's recent median throughput (the fastest peer scores 100). */
export function capabilityScores (samples: Sample[], recent = RECENT_SAMPLES): CapabilityScore[] {
  const per = [...byPeer(samples)].map(([peer, list]) => {
    const values = list.map(s => s.value)
    const speed = median(values.slice(-recent))
    const m = mean(values)
    const cv = values.length > 1 && m > 0 ? sd(values) / m : 0
    const last = list[list.length - 1]
    return { peer, speed, samples: list.length, cv, runtime: last.runtime ?? 'unknown', backend: last.backend ?? 'unknown' }
  })
  const best = Math.max(0, ...per.map(p => p.speed))
  return per.map(p => ({
    peer: p.peer,
    score: best > 0 ? Math.round(1000 * p.speed / best) / 10 : 0,
    confidence: Math.round(1000 * Math.min(1, p.samples / CONFIDENT_SAMPLES) / (1 + p.cv)) / 1000,
    samples: p.samples,
    speed: p.speed,
    runtime: p.runtime,
    backend: p.backend
  })).sort((a, b) => b.score - a.score || (a.peer < b.peer ? -1 : 1))
}

/** The planner's history input (`PlanInput.history`): peers with at least `minSamples` samples. */
export function plannerHistory (scores: CapabilityScore[], minSamples = PLANNER_MIN_SAMPLES, recommendations: Recommendation[] = []): Map<string, { speed: number, samples: number, avoid?: string }> {
  const out = new Map<string, { speed: number, samples: number, avoid?: string }>(scores.filter(s => s.samples >= minSamples && s.speed > 0).map(s => [s.peer, { speed: s.speed, samples: s.samples }]))
  // the peers to avoid go to the planner too (with too few samples their speed stays unused: speed 0)
  for (const r of recommendations) if (r.kind === 'avoid') out.set(r.subject, { ...(out.get(r.subject) ?? { speed: 0, samples: 0 }), avoid: r.reason })
  return out
}

/** A recovery as the analysis reads it. */
export interface RecoveryRow { failed: string[], strategy: string, ok: boolean, stallMs: number }

/** Layers of `nLayers` for each peer in proportion to speed (largest remainder, at least one each, at most one peer per layer). */
export function layerShares (peers: Array<{ peer: string, speed: number }>, nLayers: number): Map<string, number> {
  const chosen = [...peers].sort((a, b) => b.speed - a.speed).slice(0, nLayers)
  const total = chosen.reduce((a, p) => a + p.speed, 0)
  const out = new Map<string, number>()
  if (chosen.length === 0 || total <= 0) return out
  const spare = nLayers - chosen.length // one each first
  const exact = chosen.map(p => spare * p.speed / total)
  const floor = exact.map(Math.floor)
  let left = spare - floor.reduce((a, b) => a + b, 0)
  const order = exact.map((e, i) => [e - floor[i], i]).sort((a, b) => b[0] - a[0])
  for (const [, i] of order) { if (left-- <= 0) break; floor[i]++ }
  chosen.forEach((p, i) => out.set(p.peer, 1 + floor[i]))
  return out
}

/**
 * Recommendations from scores, anomalies and recoveries: peers to avoid (flagged slower, or
 * lost in ≥ AVOID_FAILURES recoveries), layers per peer for `model` (speed-proportional over
 * the others), the recovery strategy with the best outcome (success rate, then median stall),
 * and the sharding strategy (speed-sized when speeds differ by more than 1.5×).
 */
export function recommend (input: { scores: CapabilityScore[], anomalies: Anomaly[], recoveries: RecoveryRow[], model?: { name: string, nLayers: number } }): Recommendation[] {
  const out: Recommendation[] = []
  const avoid = new Set<string>()
  for (const a of input.anomalies) {
    if (!a.flagged || a.direction !== 'slower') continue
    avoid.add(a.peer)
    out.push({ kind: 'avoid', subject: a.peer, value: 'avoid', reason: `recent throughput ${a.recent.toFixed(1)} vs history median ${a.baseline.toFixed(1)} ± ${a.spread.toFixed(1)} (robust z ${a.z.toFixed(1)}, threshold ${ANOMALY_Z})` })
  }
  const lost = new Map<string, number>()
  for (const r of input.recoveries) for (const p of r.failed) lost.set(p, (lost.get(p) ?? 0) + 1)
  for (const [peer, n] of lost) {
    if (n < AVOID_FAILURES || avoid.has(peer)) continue
    avoid.add(peer)
    out.push({ kind: 'avoid', subject: peer, value: 'avoid', reason: `lost in ${n} recoveries (threshold ${AVOID_FAILURES})` })
  }
  if (input.model !== undefined) {
    const usable = input.scores.filter(s => !avoid.has(s.peer) && s.speed > 0)
    const shares = layerShares(usable.map(s => ({ peer: s.peer, speed: s.speed })), input.model.nLayers)
    for (const [peer, n] of shares) {
      const s = usable.find(x => x.peer === peer)!
      out.push({ kind: 'layers', subject: peer, model: input.model.name, value: String(n), reason: `${n} of ${input.model.nLayers} layers: speed ${s.speed.toFixed(1)} tok/s (score ${s.score}, ${s.samples} samples)` })
    }
    if (usable.length > 1) {
      const speeds = usable.map(s => s.speed)
      const spread = Math.max(...speeds) / Math.min(...speeds)
      out.push({ kind: 'strategy', subject: 'mesh', model: input.model.name, value: spread > 1.5 ? 'balanced' : 'layer', reason: `fastest/slowest peer speed ${spread.toFixed(2)}× (${spread > 1.5 ? 'above' : 'within'} 1.5×)` })
    }
  }
  const byStrategy = new Map<string, RecoveryRow[]>()
  for (const r of input.recoveries) byStrategy.set(r.strategy, [...(byStrategy.get(r.strategy) ?? []), r])
  const ranked = [...byStrategy].map(([strategy, rows]) => {
    const ok = rows.filter(r => r.ok)
    return { strategy, n: rows.length, rate: ok.length / rows.length, stall: ok.length > 0 ? median(ok.map(r => r.stallMs)) : Infinity }
  }).sort((a, b) => b.rate - a.rate || a.stall - b.stall)
  if (ranked.length > 0) {
    const b = ranked[0]
    out.push({ kind: 'recovery_strategy', subject: 'mesh', value: b.strategy, reason: `${Math.round(100 * b.rate)}% of ${b.n} recoveries succeeded, median stall ${Number.isFinite(b.stall) ? Math.round(b.stall) + ' ms' : 'n/a'}` + (ranked.length > 1 ? `; next ${ranked[1].strategy} ${Math.round(100 * ranked[1].rate)}% of ${ranked[1].n}` : '') })
  }
  return out
}
