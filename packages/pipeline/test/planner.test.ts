import { describe, expect, it } from 'vitest'
import { layerManifest, syntheticModel, SYNTHETIC_PRESETS } from '@shardmesh/model'
import type { Capabilities } from '@shardmesh/mesh'
import { halfLayerSizes, numericsOf, partSizes, plan, replan, stageBytes } from '../src/index.ts'
import type { PlanMember, StrategyName } from '../src/index.ts'

const model = syntheticModel({ ...SYNTHETIC_PRESETS['tiny-gqa2'], nLayers: 6 })
const config = model.config
const sizes = partSizes(layerManifest(model))
const total = stageBytes(sizes, 0, config.nLayers)

function member (peerId: string, caps: Partial<Capabilities> = {}): PlanMember {
  return { peerId, capabilities: { runtime: { name: 'node', version: '22' }, backend: { kind: 'cpu' }, memoryBytes: 0, ...caps } }
}

function covers (p: ReturnType<typeof plan>): void {
  let next = 0
  for (const s of p.stages) { expect(s.range[0]).toBe(next); expect(s.range[1]).toBeGreaterThan(next); next = s.range[1] }
  expect(next).toBe(config.nLayers)
}

describe('planner', () => {
  it('layer: contiguous even ranges, one per peer, deterministic whatever the member order', () => {
    const ms = ['c', 'a', 'b'].map(id => member(id))
    const p = plan({ config, sizes, members: ms, strategy: 'layer' })
    covers(p)
    expect(p.stages.map(s => s.range)).toEqual([[0, 2], [2, 4], [4, 6]])
    expect(p.stages.map(s => s.primary)).toEqual(['a', 'b', 'c'])
    expect(plan({ config, sizes, members: [...ms].reverse(), strategy: 'layer' })).toEqual(p)
    expect(p.version).toBe(1)
    expect(p.stages[0].reason).toMatch(/^layer: 2 of 6 layers/)
  })

  it('uses at most one peer per layer and lists the others as standbys', () => {
    const p = plan({ config, sizes, members: 'abcdefgh'.split('').map(id => member(id)), strategy: 'layer' })
    expect(p.stages).toHaveLength(6)
    expect(p.stages.every(s => s.standbys.length === 1 && !p.stages.some(t => t.primary === s.standbys[0]))).toBe(true)
  })

  it('balanced: the last stage of a tied model carries the LM head (the embedding table), the first not its lookup', () => {
    // synthetic-100m's part sizes: a tied 32000×768 F32 embedding and 12 equal layers
    const layer = 28_317_696
    const big = { ...config, name: 'big', nLayers: 12 }
    const tied = { embedding: 98_304_000, layers: new Array(12).fill(layer), head: 3072, tiedHead: true }
    const p = plan({ config: big, sizes: tied, members: [member('a'), member('b')], strategy: 'balanced' })
    expect(p.stages.map(s => s.range)).toEqual([[0, 8], [8, 12]])
    const untied = { ...tied, tiedHead: false }
    expect(plan({ config: big, sizes: untied, members: [member('a'), member('b')], strategy: 'balanced' }).stages.map(s => s.range)).toEqual([[0, 6], [6, 12]])
  })

  it('balanced: ranges follow measured throughput', () => {
    const ms = [member('a', { throughput: { model: config.name, decodeTokensPerSecond: 300 } }), member('b', { throughput: { model: config.name, decodeTokensPerSecond: 100 } })]
    const p = plan({ config, sizes, members: ms, strategy: 'balanced' })
    covers(p)
    const len = (id: string): number => { const s = p.stages.find(x => x.primary === id)!; return s.range[1] - s.range[0] }
    expect(len('a')).toBeGreaterThan(len('b'))
    expect(p.stages[0].reason).toContain('measured 300.0 tok/s')
  })

  it('respects memory budgets and fails with PlanError when nothing fits', () => {
    const small = Math.ceil(total / 3)
    const ms = [member('a', { memoryBytes: total }), member('b', { memoryBytes: small })]
    const p = plan({ config, sizes, members: ms, strategy: 'layer' })
    covers(p)
    for (const s of p.stages) expect(s.bytes).toBeLessThanOrEqual(ms.find(m => m.peerId === s.primary)!.capabilities.memoryBytes)
    expect(p.stages.find(s => s.primary === 'b')!.range[1] - p.stages.find(s => s.primary === 'b')!.range[0]).toBeLessThan(3)
    expect(() => plan({ config, sizes, members: [member('a', { memoryBytes: small / 2 }), member('b', { memoryBytes: small / 2 })], strategy: 'balanced' }))
      .toThrow(expect.objectContaining({ name: 'PlanError' }))
  })

  it('hardware_aware prefers a real GPU, browser_optimized lets measurement override the prior', () => {
    const gpu = member('g', { backend: { kind: 'webgpu', adapter: { vendor: 'nvidia' } }, runtime: { name: 'chrome', version: '141' } })
    const cpu = member('c')
    const hw = plan({ config, sizes, members: [gpu, cpu], strategy: 'hardware_aware' })
    const len = (p: ReturnType<typeof plan>, id: string): number => { const s = p.stages.find(x => x.primary === id)!; return s.range[1] - s.range[0] }
    expect(len(hw, 'g')).toBeGreaterThan(len(hw, 'c'))
    const ff = member('f', { runtime: { name: 'firefox', version: '140' } })
    expect(len(plan({ config, sizes, members: [ff, cpu], strategy: 'browser_optimized' }), 'c')).toBeGreaterThan(3)
    const fast = member('f', { runtime: { name: 'firefox', version: '140' }, throughput: { model: config.name, decodeTokensPerSecond: 50 } })
    const slow = member('c', { throughput: { model: config.name, decodeTokensPerSecond: 10 } })
    expect(len(plan({ config, sizes, members: [fast, slow], strategy: 'browser_optimized' }), 'f')).toBeGreaterThan(3)
  })

  it('custom: takes an explicit allocation and refuses gaps, unknown peers and overflows', () => {
    const ms = [member('a'), member('b', { memoryBytes: 1 })]
    const p = plan({ config, sizes, members: [member('a'), member('b')], strategy: 'custom', allocation: [{ range: [0, 1], peer: 'b' }, { range: [1, 6], peer: 'a' }] })
    expect(p.stages.map(s => [s.range, s.primary])).toEqual([[[0, 1], 'b'], [[1, 6], 'a']])
    const bad = (allocation: Array<{ range: [number, number], peer: string }>, members = [member('a'), member('b')]): void => {
      expect(() => plan({ config, sizes, members, strategy: 'custom', allocation })).toThrow(expect.objectContaining({ name: 'InvalidAllocationError' }))
    }
    bad([{ range: [0, 2], peer: 'a' }, { range: [3, 6], peer: 'b' }])
    bad([{ range: [0, 6], peer: 'z' }])
    bad([{ range: [0, 5], peer: 'a' }])
    bad([{ range: [0, 1], peer: 'b' }, { range: [1, 6], peer: 'a' }], ms)
  })

  it('replan keeps ranges while primaries live, re-plans with a new version when one leaves', () => {
    const ms = ['a', 'b', 'c'].map(id => member(id))
    const p1 = plan({ config, sizes, members: ms, strategy: 'layer' })
    expect(replan(p1, { config, sizes, members: ms, strategy: 'layer' })).toBe(p1)
    const joined = replan(p1, { config, sizes, members: [...ms, member('d')], strategy: 'layer' })
    expect(joined.stages.map(s => [s.range, s.primary])).toEqual(p1.stages.map(s => [s.range, s.primary]))
    expect(joined.version).toBe(2)
    expect(joined.stages.every(s => s.standbys[0] === 'd')).toBe(true)
    // b's range goes to its standby d; a and c keep theirs (running sessions through them go on)
    const left = replan(joined, { config, sizes, members: [member('a'), member('c'), member('d')], strategy: 'layer' })
    expect(left.version).toBe(3)
    expect(left.stages.map(s => [s.range, s.primary])).toEqual(p1.stages.map(s => [s.range, s.primary === 'b' ? 'd' : s.primary]))
    expect(left.stages[1].reason).toMatch(/took over from b/)
    covers(left)
    // nobody stands by for c's range: the whole pipeline is re-planned over a and d
    const scarce = replan(left, { config, sizes, members: [member('a'), member('d')], strategy: 'layer' })
    expect(scarce.stages.map(s => s.primary)).toEqual(['a', 'd'])
    covers(scarce)
  })

  it('mixes cpu and webgpu primaries; a stage\'s standbys compute with its primary\'s numerics (numericsOf)', () => {
    const swiftshader = { kind: 'webgpu' as const, adapter: { vendor: 'google', architecture: 'swiftshader', fallback: 'true', subgroups: 'true' } }
    const nvidia = { kind: 'webgpu' as const, adapter: { vendor: 'nvidia', architecture: 'ada', subgroups: 'true' } }
    expect(numericsOf({ kind: 'cpu' })).toBe('cpu')
    expect(numericsOf(swiftshader)).toBe('webgpu google/swiftshader subgroups')
    // Node's Dawn and a Chromium tab on SwiftShader describe the driver differently: one class all the same
    expect(numericsOf({ ...swiftshader, adapter: { ...swiftshader.adapter, description: 'SwiftShader driver 5.0.0' } })).toBe(numericsOf(swiftshader))
    expect(numericsOf(nvidia)).not.toBe(numericsOf(swiftshader))
    // stages: a (webgpu) and b (cpu); spares: c (cpu), d (webgpu on another adapter), e (webgpu like a)
    const ms = [member('a', { backend: swiftshader }), member('b'), member('c'), member('d', { backend: nvidia }), member('e', { backend: swiftshader })]
    const p = plan({ config, sizes, members: ms, strategy: 'layer', maxStages: 2, standbys: 3 })
    covers(p)
    expect(p.stages.map(s => [s.primary, s.standbys])).toEqual([['a', ['e']], ['b', ['c']]])
    // a lost primary's range goes to a standby of its class; with none, the whole pipeline is re-planned
    const lostA = replan(p, { config, sizes, members: ms.filter(m => m.peerId !== 'a'), strategy: 'layer', maxStages: 2, standbys: 3 })
    expect(lostA.stages.map(s => s.primary)).toEqual(['e', 'b'])
    const noTwin = plan({ config, sizes, members: [member('a', { backend: swiftshader }), member('b'), member('d', { backend: nvidia })], strategy: 'layer', maxStages: 2 })
    expect(noTwin.stages.map(s => [s.primary, s.standbys])).toEqual([['a', []], ['b', []]])
  })

  it.each(['layer', 'balanced', 'hardware_aware', 'browser_optimized'] as StrategyName[])('%s plans 1..8 members covering every layer', (strategy) => {
    for (let n = 1; n <= 8; n++) covers(plan({ config, sizes, members: Array.from({ length: n }, (_, i) => member(`p${i}`)), strategy }))
  })

  it('gives a peer history says to avoid no stage (unless nobody else is left), and moves a standing plan off it', () => {
    const ms = ['a', 'b', 'c'].map(id => member(id))
    const history = new Map([['b', { speed: 0, samples: 0, avoid: 'recent throughput 40 vs history median 100 (robust z -6.0)' }]])
    const p = plan({ config, sizes, members: ms, strategy: 'balanced', history })
    expect(p.stages.map(s => s.primary)).not.toContain('b')
    expect(p.stages.flatMap(s => s.standbys)).not.toContain('b')
    expect(plan({ config, sizes, members: [member('b')], strategy: 'balanced', history }).stages[0].primary).toBe('b')
    const before = plan({ config, sizes, members: ms, strategy: 'layer', maxStages: 2 })
    const onB = before.stages.findIndex(s => s.primary === 'b')
    expect(onB).toBeGreaterThanOrEqual(0)
    const after = replan(before, { config, sizes, members: ms, strategy: 'layer', maxStages: 2, history })
    expect(after.version).toBe(before.version + 1)
    expect(after.stages.map(s => s.primary)).not.toContain('b')
    expect(after.stages[onB].reason).toMatch(/which history says to avoid \(recent throughput/)
  })

  describe('attention_feedforward', () => {
    const unitsOf = (st: { range: [number, number], units?: [number, number] }): [number, number] => st.units ?? [2 * st.range[0], 2 * st.range[1]]
    function chain (p: ReturnType<typeof plan>): Array<[number, number]> {
      let next = 0
      for (const st of p.stages) {
        const u = unitsOf(st)
        expect(u[0]).toBe(next)
        expect(st.range).toEqual([Math.floor(u[0] / 2), Math.ceil(u[1] / 2)])
        // units are named only where a stage starts or ends inside a block
        expect(st.units === undefined).toBe(u[0] % 2 === 0 && u[1] % 2 === 0)
        next = u[1]
      }
      expect(next).toBe(2 * config.nLayers)
      return p.stages.map(unitsOf)
    }

    it('plans over units: stages may start or end between a block\'s attention and its feed-forward', () => {
      const p = plan({ config, sizes, members: 'abcdefghijkl'.split('').map(id => member(id)), strategy: 'attention_feedforward' })
      expect(p.stages).toHaveLength(12) // one unit each: more stages than layers
      expect(chain(p)).toEqual(Array.from({ length: 12 }, (_, i) => [i, i + 1]))
      expect(p.stages[0].reason).toMatch(/^attention_feedforward: 1 of 12 units \(attention or feed-forward halves of blocks\)/)
      const three = plan({ config, sizes, members: 'abc'.split('').map(id => member(id)), strategy: 'attention_feedforward' })
      chain(three)
    })

    it('splits each layer\'s bytes between its halves by parameter count, and sizes stages by speed and memory', () => {
      const half = halfLayerSizes(sizes, config)
      expect(half.layers).toHaveLength(2 * config.nLayers)
      for (let l = 0; l < config.nLayers; l++) expect(half.layers[2 * l] + half.layers[2 * l + 1]).toBeCloseTo(sizes.layers[l], 6)
      expect(half.layers[0]).toBeLessThan(half.layers[1]) // tiny-gqa2: the feed-forward outweighs the attention
      const fast = member('a', { throughput: { model: 'x', decodeTokensPerSecond: 300 } })
      const slow = member('b', { throughput: { model: 'x', decodeTokensPerSecond: 100 } })
      const [ua, ub] = chain(plan({ config, sizes, members: [fast, slow], strategy: 'attention_feedforward' }))
      expect(ua[1] - ua[0]).toBeGreaterThan(ub[1] - ub[0])
      // a peer whose budget holds only part of a block still gets a stage
      const budget = Math.ceil(stageBytes(half, 0, 1))
      const p = plan({ config, sizes, members: [member('a', { memoryBytes: budget }), member('b')], strategy: 'attention_feedforward' })
      expect(p.stages[0]).toMatchObject({ primary: 'a', range: [0, 1], units: [0, 1] })
    })

    it('custom allocations may name units; replan keeps them when a primary is lost', () => {
      const ms = ['a', 'b', 'c', 'd'].map(id => member(id))
      const p = plan({ config, sizes, members: ms, strategy: 'custom', allocation: [{ range: [0, 2], units: [0, 3], peer: 'a' }, { range: [1, 5], units: [3, 9], peer: 'b' }, { range: [4, 6], units: [9, 12], peer: 'c' }] })
      expect(chain(p)).toEqual([[0, 3], [3, 9], [9, 12]])
      expect(() => plan({ config, sizes, members: ms, strategy: 'custom', allocation: [{ range: [0, 2], units: [0, 3], peer: 'a' }, { range: [2, 6], units: [4, 12], peer: 'b' }] })).toThrow(/does not continue at unit 3/)
      const af = plan({ config, sizes, members: ms, strategy: 'attention_feedforward', maxStages: 3 })
      expect(af.stages.some(st => st.units !== undefined)).toBe(true)
      const lost = af.stages[1].primary
      const next = replan(af, { config, sizes, members: ms.filter(m => m.peerId !== lost), strategy: 'attention_feedforward', maxStages: 3 })
      expect(next.stages.map(unitsOf)).toEqual(af.stages.map(unitsOf))
      expect(next.stages[1].primary).toBe(af.stages[1].standbys[0])
    })
  })
})
