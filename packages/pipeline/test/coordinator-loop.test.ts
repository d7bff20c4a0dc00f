import { describe, expect, it } from 'vitest'
import { layerManifest, syntheticModel, SYNTHETIC_PRESETS } from '@shardmesh/model'
import type { Member } from '@shardmesh/mesh'
import { maxStages, nextPlan, planMembers } from '../src/index.ts'
import type { PipelineSettings } from '../src/index.ts'

const manifest = layerManifest(syntheticModel({ ...SYNTHETIC_PRESETS['tiny-gqa2'], nLayers: 6 }))
const settings: PipelineSettings = { model: 'bafy-test', strategy: 'layer', minPeers: 2 }

function member (peerId: string, init: Partial<Member> = {}): Member {
  return {
    peerId, role: 'peer', eligible: true, addrs: [], layers: [], load: 0, term: 1, coordinator: null, stateVersion: 0, stateTerm: 0,
    status: 'alive', lastSeen: 0, firstSeen: 0, connected: true, transitions: [],
    capabilities: { runtime: { name: 'node', version: '22' }, backend: { kind: 'cpu' }, memoryBytes: 0 },
    ...init
  }
}
const boot = member('boot', { role: 'bootstrap' })

describe('coordinator loop: which plan to publish', () => {
  it('keeps standbys by fault-tolerance level: one spare at medium, one per stage at high, two at critical, none below', () => {
    const four = ['a', 'b', 'c', 'd'].map(id => member(id))
    const stagesAt = (level: 'none' | 'low' | 'medium' | 'high' | 'critical'): number => nextPlan({ previous: undefined, members: [boot, ...four], manifest, settings: { ...settings, faultTolerance: { level, recovery: 'progressive' } }, waitOver: true })!.stages.length
    expect([stagesAt('none'), stagesAt('low'), stagesAt('medium'), stagesAt('high'), stagesAt('critical')]).toEqual([4, 4, 3, 2, 1])
    const high = nextPlan({ previous: undefined, members: [boot, ...four], manifest, settings: { ...settings, faultTolerance: { level: 'high', recovery: 'parallel' } }, waitOver: true })!
    const primaries = new Set(high.stages.map(s => s.primary))
    for (const s of high.stages) expect(s.standbys.length === 1 && !primaries.has(s.standbys[0])).toBe(true)
    expect(new Set(high.stages.map(s => s.standbys[0])).size).toBe(2) // a different standby for each stage
    expect([maxStages('medium', 1), maxStages('medium', 2), maxStages('high', 1), maxStages('critical', 6)]).toEqual([1, 2, 1, 2])
    const critical = nextPlan({ previous: undefined, members: [boot, ...four, member('e'), member('f')], manifest, settings: { ...settings, faultTolerance: { level: 'critical', recovery: 'parallel' } }, waitOver: true })!
    expect(critical.stages).toHaveLength(2)
    for (const s of critical.stages) expect(new Set([s.primary, ...s.standbys]).size).toBe(3) // three peers per stage
  })

  it('a suspect primary keeps its range (re-planning waits for dead)', () => {
    const p = nextPlan({ previous: undefined, members: [boot, member('a'), member('b')], manifest, settings, waitOver: true })!
    expect(nextPlan({ previous: p, members: [boot, member('a', { status: 'suspect' }), member('b')], manifest, settings, waitOver: true })).toBeUndefined()
    expect(nextPlan({ previous: p, members: [boot, member('a', { status: 'dead' }), member('b')], manifest, settings, waitOver: true })?.stages.map(s => s.primary)).not.toContain('a')
  })

  it('plans over compute peers, not the bootstrap; the bootstrap only when alone', () => {
    expect(planMembers([boot, member('a')]).members.map(m => m.peerId)).toEqual(['a'])
    expect(planMembers([boot, member('a', { status: 'dead' })])).toMatchObject({ fallback: true, members: [{ peerId: 'boot' }] })
  })

  it('waits for minPeers before the first plan, unless the wait is over', () => {
    expect(nextPlan({ previous: undefined, members: [boot, member('a')], manifest, settings, waitOver: false })).toBeUndefined()
    expect(nextPlan({ previous: undefined, members: [boot, member('a')], manifest, settings, waitOver: true })?.stages).toHaveLength(1)
    const p = nextPlan({ previous: undefined, members: [boot, member('a'), member('b')], manifest, settings, waitOver: false })!
    expect(p.stages.map(s => [s.range, s.primary])).toEqual([[[0, 3], 'a'], [[3, 6], 'b']])
    expect(p.stages[0].reason).toMatch(/^layer: 3 of 6 layers over 2 peer/)
  })

  it('keeps running ranges when a peer joins (it becomes a standby), re-plans when a primary leaves', () => {
    const p = nextPlan({ previous: undefined, members: [boot, member('a'), member('b')], manifest, settings, waitOver: false })!
    expect(nextPlan({ previous: p, members: [boot, member('a'), member('b')], manifest, settings, waitOver: false })).toBeUndefined()
    const joined = nextPlan({ previous: p, members: [boot, member('a'), member('b'), member('c')], manifest, settings, waitOver: false })!
    expect(joined.stages.map(s => [s.range, s.primary])).toEqual([[[0, 3], 'a'], [[3, 6], 'b']])
    expect(joined.stages.flatMap(s => s.standbys)).toContain('c')
    expect(joined.version).toBe(p.version + 1)
    const left = nextPlan({ previous: joined, members: [boot, member('a'), member('b', { status: 'dead' }), member('c')], manifest, settings, waitOver: false })!
    expect(left.stages.map(s => s.primary).sort()).toEqual(['a', 'c'])
    expect(left.version).toBeGreaterThan(joined.version)
  })

  it('moves a plan off the bootstrap once compute peers are alive', () => {
    const alone = nextPlan({ previous: undefined, members: [boot], manifest, settings, waitOver: true })!
    expect(alone.stages.map(s => s.primary)).toEqual(['boot'])
    const moved = nextPlan({ previous: alone, members: [boot, member('a')], manifest, settings, waitOver: false })!
    expect(moved.stages.map(s => s.primary)).toEqual(['a'])
  })
})
