import { describe, expect, it } from 'vitest'
import { layerManifest, syntheticModel, SYNTHETIC_PRESETS } from '@shardmesh/model'
import type { Member } from '@shardmesh/mesh'
import { nextPlan, planChange, rebalance } from '../src/index.ts'
import type { PipelineSettings, Plan } from '../src/index.ts'

const manifest = layerManifest(syntheticModel({ ...SYNTHETIC_PRESETS['tiny-gqa2'], nLayers: 8 }))
const settings: PipelineSettings = { model: 'bafy-test', strategy: 'balanced', minPeers: 3, faultTolerance: { level: 'low', recovery: 'progressive' } }

function member (peerId: string, tps = 100): Member {
  return {
    peerId, role: 'peer', eligible: true, addrs: [], layers: [], load: 0, term: 1, coordinator: null, stateVersion: 0, stateTerm: 0,
    status: 'alive', lastSeen: 0, firstSeen: 0, connected: true, transitions: [],
    capabilities: { runtime: { name: 'node', version: '22' }, backend: { kind: 'cpu' }, memoryBytes: 0, throughput: { model: 'tiny-gqa2', decodeTokensPerSecond: tps } }
  }
}
const boot = { ...member('boot'), role: 'bootstrap' as const }
const three = [boot, member('a'), member('b'), member('c')]
const layers = (p: Plan): Record<string, number> => Object.fromEntries(p.stages.map(s => [s.primary, s.range[1] - s.range[0]]))
const history = (speeds: Record<string, number>, samples = 10): Map<string, { speed: number, samples: number }> => new Map(Object.entries(speeds).map(([peer, speed]) => [peer, { speed, samples }]))

describe('history rebalance of a standing plan', () => {
  const first = nextPlan({ previous: undefined, members: three, manifest, settings, waitOver: true })!

  it('a primary whose history fell to a quarter gets fewer layers; the others take them; same primaries in the same order', () => {
    const slowed = first.stages.reduce((a, s) => (s.range[1] - s.range[0] > a.range[1] - a.range[0] ? s : a)).primary
    const before = layers(first)
    const r = planChange({ previous: first, members: three, manifest, settings, waitOver: true, history: history({ a: 100, b: 100, c: 100, [slowed]: 25 }) })
    expect(r.rebalanced).toBe(true)
    const next = r.plan!
    expect(layers(next)[slowed]).toBeLessThan(before[slowed])
    expect(next.stages.map(s => s.primary)).toEqual(first.stages.map(s => s.primary))
    expect(next.stages.map(s => s.range).flat()).toEqual(next.stages.flatMap((s, i) => [i === 0 ? 0 : next.stages[i - 1].range[1], s.range[1]]))
    expect(next.stages.at(-1)!.range[1]).toBe(8)
    expect(next.strategy).toBe('balanced')
    expect(next.version).toBe(first.version + 1)
    expect(next.stages.find(s => s.primary === slowed)!.reason).toMatch(/history \(10 samples\) 25\.0 tok\/s.*rebalanced by history: slowest stage [\d.]+× faster/)
  })

  it('leaves the plan alone without history, with too few samples, with speeds that change the slowest stage by less than the gain, or when told not to', () => {
    const slowed = first.stages[0].primary
    expect(nextPlan({ previous: first, members: three, manifest, settings, waitOver: true })).toBeUndefined()
    expect(nextPlan({ previous: first, members: three, manifest, settings, waitOver: true, history: history({ [slowed]: 25 }, 4) })).toBeUndefined()
    expect(nextPlan({ previous: first, members: three, manifest, settings, waitOver: true, history: history({ a: 100, b: 100, c: 100, [slowed]: 90 }) })).toBeUndefined()
    expect(nextPlan({ previous: first, members: three, manifest, settings, waitOver: true, history: history({ a: 100, b: 100, c: 100, [slowed]: 25 }), rebalance: false })).toBeUndefined()
  })

  it('does not rebalance equal-share strategies, nor a plan whose primary is gone (replan moves that range)', () => {
    const layer = nextPlan({ previous: undefined, members: three, manifest, settings: { ...settings, strategy: 'layer' }, waitOver: true })!
    expect(nextPlan({ previous: layer, members: three, manifest, settings: { ...settings, strategy: 'layer' }, waitOver: true, history: history({ a: 100, b: 100, c: 25 }) })).toBeUndefined()
    const input = { config: manifest.config, members: three.slice(0, 3), strategy: 'balanced' as const, history: history({ a: 100, b: 25 }) }
    expect(rebalance(first, input)).toBeUndefined() // c, a primary of `first`, is not among the members
  })
})
