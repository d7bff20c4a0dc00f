import { describe, expect, it } from 'vitest'
import { layerManifest, syntheticModel, SYNTHETIC_PRESETS } from '@shardmesh/model'
import { partSizes, plan } from '@shardmesh/pipeline'
import type { PlanMember, StrategyName } from '@shardmesh/pipeline'
import { capabilityScores, detectAnomalies, historyDefaults, layerShares, plannerHistory, recommend, trends } from '../src/index.ts'
import type { Sample } from '../src/index.ts'

/** Seeded noise (mulberry32), so every run sees the same series. */
function rng (seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = seed
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const T0 = 1_700_000_000_000
const MIN = 60_000

/** `n` samples of `peer` around `level` (±`noise` fraction), one a minute from `start`. */
function series (peer: string, level: number, n: number, start: number, noise = 0.03, seed = 1): Sample[] {
  const r = rng(seed)
  return Array.from({ length: n }, (_, i) => ({ peer, at: start + i * MIN, value: level * (1 + noise * (2 * r() - 1)), runtime: 'node', backend: 'cpu' }))
}

/** Three peers at ~100 tok/s; `slow` drops to 40% for its last five samples. */
function mesh (slow = 'a'): Sample[] {
  return ['a', 'b', 'c'].flatMap((p, k) => {
    const s = series(p, 100, 25, T0, 0.03, k + 1)
    if (p === slow) for (const x of s.slice(-5)) x.value *= 0.4
    return s
  })
}

describe('analysis', () => {
  it('flags an injected slow series (|z| ≥ 3 against its own history) and no steady peer', () => {
    const found = detectAnomalies(mesh('a'))
    expect(found.map(a => a.peer).sort()).toEqual(['a', 'b', 'c'])
    const a = found.find(x => x.peer === 'a')!
    expect(a.flagged).toBe(true)
    expect(a.direction).toBe('slower')
    expect(a.z).toBeLessThanOrEqual(-historyDefaults.ANOMALY_Z)
    expect(a.history).toBe(20)
    expect(found.filter(x => x.flagged).map(x => x.peer)).toEqual(['a'])
  })

  it('flags a slowdown whose history starts with outliers (a cold first run): median and MAD, not mean and sd', () => {
    const s = series('w', 100, 18, T0, 0.1)
    for (const x of s.slice(0, 3)) x.value = 10 // three cold runs at a tenth of the speed
    for (const x of s.slice(-5)) x.value *= 0.3
    const [a] = detectAnomalies(s)
    expect(a.flagged).toBe(true)
    expect(a.direction).toBe('slower')
    expect(a.baseline).toBeGreaterThan(90)
    // with mean and sd the outliers' spread would have hidden it
    const past = s.slice(0, -5).map(x => x.value)
    const m = past.reduce((x, y) => x + y, 0) / past.length
    const sd = Math.sqrt(past.reduce((x, y) => x + (y - m) ** 2, 0) / (past.length - 1))
    expect(Math.abs((a.recent - m) / sd)).toBeLessThan(historyDefaults.ANOMALY_Z)
  })

  it('does not judge a peer with fewer than ANOMALY_MIN_HISTORY earlier samples', () => {
    const short = series('d', 100, historyDefaults.ANOMALY_MIN_HISTORY + historyDefaults.RECENT_SAMPLES - 1, T0)
    for (const x of short.slice(-5)) x.value = 1
    expect(detectAnomalies(short)).toEqual([])
  })

  it('finds a degrading trend and scores peers 0–100 with confidence and sample size', () => {
    const falling: Sample[] = Array.from({ length: 12 }, (_, i) => ({ peer: 'f', at: T0 + i * 10 * MIN, value: 100 - 4 * i }))
    const [t] = trends(falling)
    expect(t.degrading).toBe(true)
    expect(t.relativeSlopePerHour).toBeLessThan(-historyDefaults.DEGRADING_PER_HOUR)
    expect(trends(series('s', 100, 12, T0))[0].degrading).toBe(false)

    const scores = capabilityScores(mesh('a'))
    expect(scores.map(s => s.peer).sort()).toEqual(['a', 'b', 'c'])
    expect(scores[scores.length - 1].peer).toBe('a')
    expect(scores[0].score).toBe(100)
    const a = scores.find(s => s.peer === 'a')!
    expect(a.score).toBeGreaterThan(30)
    expect(a.score).toBeLessThan(50)
    expect(a.samples).toBe(25)
    expect(a.confidence).toBeGreaterThan(0)
    expect(a.confidence).toBeLessThanOrEqual(1)
  })

  it('recommends avoiding the flagged peer, speed-proportional layers for the rest, and the recovery strategy that worked', () => {
    const samples = mesh('a')
    const recs = recommend({
      scores: capabilityScores(samples),
      anomalies: detectAnomalies(samples),
      recoveries: [
        { failed: ['x'], strategy: 'failover', ok: true, stallMs: 900 },
        { failed: ['x'], strategy: 'parallel', ok: true, stallMs: 40 },
        { failed: ['y'], strategy: 'parallel', ok: true, stallMs: 60 },
        { failed: ['x'], strategy: 'reconnect', ok: false, stallMs: 0 }
      ],
      model: { name: 'm', nLayers: 6 }
    })
    expect(recs.filter(r => r.kind === 'avoid').map(r => r.subject).sort()).toEqual(['a', 'x'])
    const layers = recs.filter(r => r.kind === 'layers')
    expect(layers.map(r => r.subject).sort()).toEqual(['b', 'c'])
    expect(layers.reduce((n, r) => n + Number(r.value), 0)).toBe(6)
    expect(recs.find(r => r.kind === 'recovery_strategy')?.value).toBe('parallel')
  })

  it('shares layers in proportion to speed, one at least each', () => {
    expect(layerShares([{ peer: 'a', speed: 300 }, { peer: 'b', speed: 100 }], 6)).toEqual(new Map([['a', 4], ['b', 2]]))
    expect([...layerShares([{ peer: 'a', speed: 1 }, { peer: 'b', speed: 1 }, { peer: 'c', speed: 1 }], 2).keys()]).toHaveLength(2)
  })
})

describe('planner with history', () => {
  const model = syntheticModel({ ...SYNTHETIC_PRESETS['tiny-gqa2'], nLayers: 6 })
  const sizes = partSizes(layerManifest(model))
  // every peer announced the same throughput at join: without history they look alike
  const members: PlanMember[] = ['a', 'b', 'c'].map(peerId => ({ peerId, capabilities: { runtime: { name: 'node', version: '22' }, backend: { kind: 'cpu' }, memoryBytes: 0, throughput: { model: 'tiny', decodeTokensPerSecond: 100 } } }))
  const layersOf = (p: ReturnType<typeof plan>, peer: string): number => p.stages.filter(s => s.primary === peer).reduce((n, s) => n + s.range[1] - s.range[0], 0)

  it.each(['balanced', 'hardware_aware', 'browser_optimized'] as StrategyName[])('%s gives a peer that history shows slower fewer layers', strategy => {
    const samples = mesh('a')
    expect(detectAnomalies(samples).find(x => x.peer === 'a')?.flagged).toBe(true)
    const history = plannerHistory(capabilityScores(samples))
    const before = plan({ config: model.config, sizes, members, strategy })
    const after = plan({ config: model.config, sizes, members, strategy, history })
    expect(layersOf(before, 'a')).toBe(2)
    expect(layersOf(after, 'a')).toBeLessThan(layersOf(before, 'a'))
    expect(after.stages.find(s => s.primary === 'a')?.reason).toMatch(/history \(25 samples\)/)
  })

  it('a peer flagged slower is recommended to avoid, and the planner then gives it no stage', () => {
    const samples = mesh('a')
    const scores = capabilityScores(samples)
    const recs = recommend({ scores, anomalies: detectAnomalies(samples), recoveries: [] })
    const history = plannerHistory(scores, undefined, recs)
    expect(history.get('a')?.avoid).toMatch(/robust z/)
    const p = plan({ config: model.config, sizes, members, strategy: 'balanced', history })
    expect(layersOf(p, 'a')).toBe(0)
    expect(p.stages.flatMap(s => [s.primary, ...s.standbys])).not.toContain('a')
  })

  it('keeps the announced throughput when history is absent or has too few samples', () => {
    const few = new Map([['a', { speed: 10, samples: 4 }]])
    const base = plan({ config: model.config, sizes, members, strategy: 'balanced' })
    expect(plan({ config: model.config, sizes, members, strategy: 'balanced', history: few })).toEqual(base)
    expect(plannerHistory(capabilityScores(series('a', 10, 4, T0)))).toEqual(new Map())
  })
})
