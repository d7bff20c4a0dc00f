import { describe, expect, it } from 'vitest'
import { layerManifest, syntheticModel, SYNTHETIC_PRESETS } from '@shardmesh/model'
import type { Capabilities } from '@shardmesh/mesh'
import { PlanError, partSizes, plan, planComponents } from '../src/index.ts'
import type { PartSizes, PlanComponent, PlanMember } from '../src/index.ts'

function member (peerId: string, tps?: number, caps: Partial<Capabilities> = {}): PlanMember {
  return { peerId, capabilities: { runtime: { name: 'node', version: '22' }, backend: { kind: 'cpu' }, memoryBytes: 0, ...(tps === undefined ? {} : { throughput: { model: 'x', decodeTokensPerSecond: tps } }), ...caps } }
}
const part = (name: string, nLayers: number, layerBytes: number, passes = 1): PlanComponent => ({
  name, passes, sizes: { embedding: 1000, layers: new Array(nLayers).fill(layerBytes), head: 500, tiedHead: false } satisfies PartSizes,
  shape: { dim: 32, hiddenDim: 96, nHeads: 4, nKvHeads: 4, headDim: 8 }
})

/** Each part's stages in plan order cover its layers (or units) contiguously. */
function covers (p: ReturnType<typeof planComponents>, parts: PlanComponent[]): void {
  for (const c of parts) {
    const stages = p.stages.filter(s => s.component === c.name)
    expect(stages.length).toBeGreaterThan(0)
    let next = 0
    for (const s of stages) {
      const u = s.units ?? [2 * s.range[0], 2 * s.range[1]]
      expect(u[0]).toBe(next)
      next = u[1]
    }
    expect(next).toBe(2 * c.sizes.layers.length)
  }
  expect(new Set(p.stages.map(s => s.primary)).size).toBe(p.stages.length) // one part per peer
}

describe('component plans', () => {
  it('puts each part on its own peers, sized by its work, deterministic whatever the member order', () => {
    const parts = [part('text', 4, 100), part('image', 4, 100)]
    const ms = ['d', 'a', 'c', 'b'].map(id => member(id))
    const p = planComponents({ model: 'clip', components: parts, members: ms, strategy: 'component' })
    covers(p, parts)
    expect(p.stages.filter(s => s.component === 'text')).toHaveLength(2)
    expect(p.stages.filter(s => s.component === 'image')).toHaveLength(2)
    expect(p.stages.every(s => s.units === undefined)).toBe(true)
    expect(p.stages[0].reason).toMatch(/^component: text \(50% of the work/)
    expect(planComponents({ model: 'clip', components: parts, members: [...ms].reverse(), strategy: 'component' })).toEqual(p)
  })

  it('gives a decoder that runs once per token most peers, and the heavier part the faster peers', () => {
    const parts = [part('encoder', 4, 100, 1), part('decoder', 4, 100, 32)]
    const p = planComponents({ model: 't5', components: parts, members: ['a', 'b', 'c', 'd', 'e'].map(id => member(id)), strategy: 'component' })
    covers(p, parts)
    expect(p.stages.filter(s => s.component === 'encoder')).toHaveLength(1)
    expect(p.stages.filter(s => s.component === 'decoder')).toHaveLength(4)
    const q = planComponents({ model: 'clip', components: [part('text', 2, 100), part('image', 6, 100)], members: [member('slow', 10), member('fast', 1000)], strategy: 'component' })
    expect(q.stages.find(s => s.component === 'image')!.primary).toBe('fast')
  })

  it('hybrid splits blocks within a part that has more peers than layers', () => {
    const parts = [part('text', 2, 100), part('image', 2, 100)]
    const ms = ['a', 'b', 'c', 'd', 'e', 'f'].map(id => member(id))
    expect(planComponents({ model: 'clip', components: parts, members: ms, strategy: 'component' }).stages).toHaveLength(4) // whole layers: at most one peer per layer
    const p = planComponents({ model: 'clip', components: parts, members: ms, strategy: 'hybrid' })
    covers(p, parts)
    expect(p.stages).toHaveLength(6)
    expect(p.stages.some(s => s.units !== undefined && s.reason.includes('blocks split within'))).toBe(true)
  })

  it('refuses fewer members than parts, and parts that fit no budget', () => {
    const parts = [part('text', 2, 100), part('image', 2, 100)]
    expect(() => planComponents({ model: 'clip', components: parts, members: [member('a')], strategy: 'component' })).toThrow(PlanError)
    expect(() => planComponents({ model: 'clip', components: parts, members: [member('a', 1, { memoryBytes: 150 }), member('b', 1, { memoryBytes: 150 })], strategy: 'component' })).toThrow(/do not fit the memory budgets/)
    expect(() => planComponents({ model: 'llama', components: [parts[0]], members: [member('a'), member('b')], strategy: 'component' })).toThrow(/several parts/)
  })
})

describe('hybrid on a model of one part', () => {
  const model = syntheticModel({ ...SYNTHETIC_PRESETS['tiny-gqa2'], nLayers: 3 })
  const sizes = partSizes(layerManifest(model))
  it('splits blocks when there are more members than layers, keeps whole layers when that is as good, and says why', () => {
    const many = plan({ config: model.config, sizes, members: ['a', 'b', 'c', 'd', 'e'].map(id => member(id)), strategy: 'hybrid' })
    expect(many.strategy).toBe('hybrid')
    expect(many.stages).toHaveLength(5)
    expect(many.stages[0].reason).toMatch(/^hybrid \(one part: split blocks: 5 stages for 5 members where whole layers allow 3\)/)
    const one = plan({ config: model.config, sizes, members: [member('a')], strategy: 'hybrid' })
    expect(one.stages).toHaveLength(1)
    expect(one.stages[0].reason).toMatch(/^hybrid \(one part: whole layers/)
    expect(() => plan({ config: model.config, sizes, members: [member('a')], strategy: 'component' })).toThrow(/one part — use hybrid/)
  })
})
