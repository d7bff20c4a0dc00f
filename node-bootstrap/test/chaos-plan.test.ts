import { describe, expect, it } from 'vitest'
import type { Plan } from '@shardmesh/pipeline'
import { VICTIM_KINDS, chaosSummary, mulberry32, percentile, pickTrial, victimCandidates } from '../src/commands/chaos-plan.ts'
import type { ChaosTrial } from '../src/commands/chaos-plan.ts'

const stage = (range: [number, number], primary: string, standbys: string[]): Plan['stages'][number] => ({ range, primary, standbys, reason: 'test', bytes: 1 })
const plan: Plan = { version: 3, strategy: 'layer', model: 'm', nLayers: 6, stages: [stage([0, 2], 'a', ['b', 'd']), stage([2, 4], 'b', ['c']), stage([4, 6], 'c', ['d'])] }
const pids = new Map([['a', 101], ['b', 102], ['c', 103], ['d', 104]])

describe('chaos trial picks', () => {
  it('name each kind of victim from the plan: primaries by position, standbys that are no primary, the coordinator, and pairs', () => {
    expect(victimCandidates(plan, 'b', p => pids.has(p))).toEqual({
      first: [['a']],
      middle: [['b']],
      last: [['c']],
      standby: [['d']],
      coordinator: [['b']],
      consecutive: [['a', 'b'], ['b', 'c']],
      'coordinator+stage': [['b', 'a'], ['b', 'c']]
    })
    // a coordinator this run cannot kill (e.g. not one of its processes) is no candidate
    expect(victimCandidates(plan, 'z', p => pids.has(p))).toMatchObject({ coordinator: [], 'coordinator+stage': [] })
    const two: Plan = { ...plan, stages: plan.stages.slice(0, 2) }
    expect(victimCandidates(two, null, () => true)).toMatchObject({ first: [['a']], middle: [], last: [['b']], coordinator: [], consecutive: [['a', 'b']] })
    // one peer serving two adjacent stages is not two victims
    const same: Plan = { ...plan, stages: [stage([0, 3], 'a', []), stage([3, 6], 'a', [])] }
    expect(victimCandidates(same, 'a', () => true)).toMatchObject({ consecutive: [], 'coordinator+stage': [] })
  })

  it('are a function of the seed: same seed, same victims, failures and tokens; another seed differs', () => {
    const draw = (seed: number): unknown[] => {
      const rng = mulberry32(seed)
      return Array.from({ length: 60 }, () => pickTrial(rng, { plan, coordinator: 'b', pids, victims: VICTIM_KINDS, failures: ['kill', 'hang'], referenceTokens: 20 }))
    }
    const a = draw(42)
    expect(draw(42)).toEqual(a)
    expect(draw(43)).not.toEqual(a)
    for (const t of a as Array<{ victim: string, peerIds: string[], pids: number[], killAtToken: number }>) {
      expect(t.killAtToken).toBeGreaterThanOrEqual(1)
      expect(t.killAtToken).toBeLessThanOrEqual(19) // at least one token still owed
      expect(t.pids).toEqual(t.peerIds.map(p => pids.get(p)))
      expect(t.peerIds).toHaveLength(t.victim === 'consecutive' || t.victim === 'coordinator+stage' ? 2 : 1)
    }
    // every kind and both failures come up over 60 draws
    expect(new Set((a as Array<{ victim: string }>).map(t => t.victim))).toEqual(new Set(VICTIM_KINDS))
    expect(new Set((a as Array<{ failure: string }>).map(t => t.failure))).toEqual(new Set(['kill', 'hang']))
  })

  it('only draws asked-for kinds, and none when the plan has none of them', () => {
    const rng = mulberry32(1)
    for (let i = 0; i < 20; i++) expect(pickTrial(rng, { plan, coordinator: null, pids, victims: ['standby'], failures: ['kill'], referenceTokens: 5 })?.peerIds).toEqual(['d'])
    const noStandby: Plan = { ...plan, stages: [stage([0, 6], 'a', [])] }
    expect(pickTrial(rng, { plan: noStandby, coordinator: null, pids, victims: ['standby', 'middle'], failures: ['kill'], referenceTokens: 5 })).toBeUndefined()
  })
})

describe('chaos summary', () => {
  const trial = (over: Partial<ChaosTrial>): ChaosTrial => ({ index: 0, victim: 'first', failure: 'kill', killAtToken: 3, pids: [1], peerIds: ['a'], injected: true, completed: true, exact: true, tokens: 10, stallMs: 100, failedAfterMs: null, ms: 500, recoveries: [], ...over })

  it('counts completion and exactness, and takes stall percentiles over completed trials only', () => {
    const s = chaosSummary([
      trial({ stallMs: 100 }),
      trial({ stallMs: 300, victim: 'last' }),
      trial({ stallMs: 200, exact: false }),
      trial({ completed: false, exact: false, stallMs: null, failedAfterMs: 2400, error: 'boom', victim: 'last', failure: 'hang' })
    ])
    expect(s.failedAfterMs).toEqual({ n: 1, p50: 2400, p95: 2400, max: 2400 })
    expect(s).toMatchObject({ trials: 4, completed: 3, exact: 2, completionRate: 0.75, exactRate: 0.5, injected: 4 })
    expect(s.stallMs).toEqual({ n: 3, p50: 200, p95: 300, max: 300 })
    expect(s.byVictim.last).toMatchObject({ trials: 2, completed: 1, exact: 1 })
    expect(s.byFailure.hang).toMatchObject({ trials: 1, completed: 0, stallMs: { n: 0, p50: null, max: null } })
  })

  it('percentiles are nearest-rank', () => {
    const xs = Array.from({ length: 100 }, (_, i) => i + 1)
    expect(percentile(xs, 0.5)).toBe(50)
    expect(percentile(xs, 0.95)).toBe(95)
    expect(percentile([7], 0.95)).toBe(7)
    expect(percentile([], 0.5)).toBeNull()
  })
})
