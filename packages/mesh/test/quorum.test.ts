import { describe, expect, it } from 'vitest'
import { anchored, electionSlot, isMajority, majority, meshTiming, MeshConfigError, votingSet } from '../src/index.ts'
import { GenesisAnchors, GenesisView } from '../src/quorum.ts'

describe('quorum rule', () => {
  it('uses the replicated configuration once it exists, whatever this peer sees alive', () => {
    const config = ['a', 'b', 'c', 'd', 'e']
    // a minority side sees only two members alive, but still needs 3 of the 5
    const set = votingSet(config, ['a', 'b'], 'a', 1)
    expect(set).toMatchObject({ size: 5, genesis: false })
    expect(isMajority(set, new Set(['a', 'b']))).toBe(false)
    expect(isMajority(set, new Set(['c', 'd', 'e']))).toBe(true)
    expect(isMajority(set, new Set(['a', 'b', 'x', 'y']))).toBe(false) // votes of non-members do not count
    expect(majority(4)).toBe(3)
    expect(majority(1)).toBe(1)
  })

  it('before the first configuration: every alive member, at least expectedMembers, widened by what voters see', () => {
    const set = votingSet([], ['a', 'b', 'c'], 'a', 1)
    expect(set).toMatchObject({ size: 3, genesis: true })
    expect(isMajority(set, new Set(['a', 'b']))).toBe(true)
    expect(isMajority(set, new Set(['a', 'b']), [5])).toBe(false) // a voter sees 5 members
    expect(isMajority(votingSet([], ['a'], 'a', 5), new Set(['a', 'b']))).toBe(false)
    expect(isMajority(votingSet([], [], 'a', 1), new Set(['a']))).toBe(true) // a mesh of one
  })

  it('a genesis election also needs a majority of the live anchors (bootstrap peers)', () => {
    const set = votingSet([], ['a', 'b', 'c'], 'a', 1)
    expect(anchored(set, new Set(['a', 'b']), new Set(['boot']))).toBe(false)
    expect(anchored(set, new Set(['a', 'boot']), new Set(['boot']))).toBe(true)
    expect(anchored(set, new Set(['a', 'boot']), new Set(['boot', 'boot2', 'boot3']))).toBe(false)
    expect(anchored(set, new Set(['boot3', 'boot']), new Set(['boot', 'boot2', 'boot3']))).toBe(true)
    expect(anchored(votingSet(['a', 'b', 'c'], [], 'a', 1), new Set(['a', 'b']), new Set(['boot']))).toBe(true) // not genesis
  })

  it('genesis anchors are transitive: a peer takes its bootstrap peers\' announced anchors, and none until it knows them', () => {
    const root = new GenesisAnchors('boot', [])
    expect([...root.get()!]).toEqual(['boot'])
    expect(root.profile()).toEqual({ anchors: ['boot'] })
    // p3 joins through p2, which joined through the bootstrap node
    const p3 = new GenesisAnchors('p3', ['p2'])
    expect(p3.get()).toBeNull()
    expect(p3.profile()).toEqual({})
    const genesis = votingSet([], ['p2', 'p3'], 'p3', 1)
    expect(anchored(genesis, new Set(['p2', 'p3']), p3.get())).toBe(false) // unknown anchors: no genesis win
    p3.learn('other', ['other'])
    expect(p3.get()).toBeNull()
    p3.learn('p2', ['boot'])
    expect([...p3.get()!]).toEqual(['boot'])
    p3.learn('p2', ['p2']) // the first announcement holds
    expect([...p3.get()!]).toEqual(['boot'])
    expect(anchored(genesis, new Set(['p2', 'p3']), p3.get())).toBe(false)
    expect(anchored(genesis, new Set(['boot', 'p3']), p3.get())).toBe(true)
    // several bootstrap peers: known once all announced, the union of theirs
    const two = new GenesisAnchors('x', ['a', 'b'])
    two.learn('a', ['boot'])
    expect(two.get()).toBeNull()
    two.learn('b', ['boot2'])
    expect([...two.get()!].sort()).toEqual(['boot', 'boot2'])
  })

  it('the genesis view keeps every member seen while there is no configuration', () => {
    const view = new GenesisView()
    view.note('a', false)
    view.note('b', false)
    view.note('c', true) // configured: no longer recorded
    expect([...view.members(['self'])].sort()).toEqual(['a', 'b', 'self'])
    // 'a' and 'b' went silent: the genesis set still counts them, so 'self' alone is no majority
    const set = votingSet([], view.members(['self']), 'self', 1)
    expect(isMajority(set, new Set(['self']))).toBe(false)
    expect(isMajority(set, new Set(['self', 'a']))).toBe(true)
  })

  it('gives every peer a distinct election slot, shuffled per term', () => {
    const peers = ['p1', 'p2', 'p3', 'p4', 'p5']
    const ranks = peers.map(p => electionSlot(p, 7, peers).rank).sort()
    expect(ranks).toEqual([0, 1, 2, 3, 4])
    expect(electionSlot('p1', 7, peers).count).toBe(5)
    const orders = new Set([3, 4, 5, 6, 7, 8].map(t => peers.map(p => electionSlot(p, t, peers).rank).join()))
    expect(orders.size).toBeGreaterThan(1)
  })

  it('checks timing overrides', () => {
    expect(meshTiming({ heartbeatIntervalMs: 100 }).heartbeatIntervalMs).toBe(100)
    expect(() => meshTiming({ electionTimeoutMinMs: 3000 })).toThrow(MeshConfigError)
    expect(() => meshTiming({ heartbeatIntervalMs: 800 })).toThrow(MeshConfigError)
    expect(() => meshTiming({ deadAfterMs: -1 })).toThrow(MeshConfigError)
  })
})
