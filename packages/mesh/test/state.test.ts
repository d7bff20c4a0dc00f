import { afterEach, describe, expect, it } from 'vitest'
import { createMeshPeer, gossipFaults, InvalidTransactionError, NotCoordinatorError, StateTooLargeError } from '../src/index.ts'
import { agreed, startPeers, stopAll, waitFor } from './fixture.ts'
import type { MeshNode, MeshPeerInit, SettableGossipFaults } from '../src/index.ts'

describe('replicated state log', () => {
  let nodes: MeshNode[] = []
  afterEach(async () => { await stopAll(nodes); nodes = [] })

  const byId = (id: string): MeshNode => nodes.find(n => n.peerId.toString() === id)!

  it('commits proposals on the coordinator, replicates them to every peer, and refuses them elsewhere', async () => {
    nodes = await startPeers(3)
    const c = await waitFor('a coordinator', () => agreed(nodes))
    const leader = byId(c.peerId).services.mesh
    const follower = nodes.find(n => n.peerId.toString() !== c.peerId)!.services.mesh
    // the first coordinator wrote the configuration (all three) and its term
    await waitFor('config of 3 everywhere', () => nodes.every(n => n.services.mesh.state().config.length === 3))
    const v = await leader.propose({ op: 'set', key: 'plan', value: { version: 7, stages: [[0, 2], [2, 5]] } })
    expect(v).toBe(leader.state().version)
    expect(leader.commitVersion()).toBeGreaterThanOrEqual(v)
    await waitFor('plan on every peer', () => nodes.every(n => n.services.mesh.state().version >= v))
    for (const n of nodes) expect(n.services.mesh.state().data.plan).toEqual({ version: 7, stages: [[0, 2], [2, 5]] })
    await leader.propose({ op: 'delete', key: 'plan' })
    await waitFor('plan deleted everywhere', () => nodes.every(n => !('plan' in n.services.mesh.state().data)))

    await expect(follower.propose({ op: 'set', key: 'a', value: 1 })).rejects.toThrow(NotCoordinatorError)
    await expect(leader.propose({ op: 'set', key: '', value: 1 })).rejects.toThrow(InvalidTransactionError)
    await expect(leader.propose({ op: 'add', peerId: follower.peerId })).rejects.toThrow(InvalidTransactionError)
    await expect(leader.propose({ op: 'set', key: 'big', value: 'x'.repeat(70_000) })).rejects.toThrow(InvalidTransactionError)
    // ~1 MiB of state at most (a snapshot must fit one state message)
    let accepted = 0
    const tooLarge = await (async () => {
      for (; accepted < 20; accepted++) await leader.propose({ op: 'set', key: `k${accepted}`, value: 'y'.repeat(60_000) })
    })().catch((err: Error) => err)
    expect(tooLarge).toBeInstanceOf(StateTooLargeError)
    expect(accepted).toBe(17)
    // the big state still reaches every peer (snapshots and appends below the topic limit)
    await waitFor('big state everywhere', () => nodes.every(n => Object.keys(n.services.mesh.state().data).length === 17))
  })

  it('a new coordinator continues from the newest state; a late joiner gets a snapshot and joins the configuration', async () => {
    nodes = await startPeers(4)
    const first = await waitFor('a coordinator', () => agreed(nodes))
    const leader = byId(first.peerId)
    for (let i = 0; i < 40; i++) await leader.services.mesh.propose({ op: 'set', key: `session-${i}`, value: { head: i } })
    const committed = leader.services.mesh.state().version
    await leader.stop()
    const rest = nodes.filter(n => n !== leader)
    const second = await waitFor('a new coordinator', () => agreed(rest))
    expect(second.term).toBeGreaterThan(first.term)
    const next = byId(second.peerId).services.mesh
    // the new coordinator recorded its term after everything the old one committed
    await waitFor('the new term recorded', () => next.state().coordinator?.term === second.term)
    expect(next.state().version).toBeGreaterThan(committed)
    expect(Object.keys(next.state().data)).toHaveLength(40)
    // and removes the dead member from the configuration
    await waitFor('config of 3', () => rest.every(n => n.services.mesh.state().config.length === 3 && !n.services.mesh.state().config.includes(first.peerId)))

    const late = await createMeshPeer({ bootstrap: [rest[0].getMultiaddrs()[0].toString()] })
    nodes.push(late)
    await waitFor('the late joiner synced and in the configuration', () =>
      late.services.mesh.state().data['session-39'] !== undefined && rest.every(n => n.services.mesh.state().config.includes(late.peerId.toString())))
    expect(late.services.mesh.coordinator().peerId).toBe(second.peerId)
  })

  it('a new coordinator that lacks the newest entries fetches them from the live peer that holds them', async () => {
    // C cannot stand for coordinator, so the next winner is one of the peers kept behind
    const faults = new Map<MeshNode, SettableGossipFaults>() // those that may fall behind
    const faulty = async (init: MeshPeerInit = {}): Promise<MeshNode> => {
      const f = gossipFaults()
      const n = await createMeshPeer({ ...init, faults: f })
      faults.set(n, f)
      return n
    }
    const seed = await faulty()
    const bootstrap = [seed.getMultiaddrs()[0].toString()]
    const holder = await createMeshPeer({ bootstrap, eligible: false })
    nodes = [seed, holder, ...await Promise.all([0, 1, 2].map(async () => await faulty({ bootstrap })))]
    const first = await waitFor('a coordinator', () => agreed(nodes))
    await waitFor('config of 5', () => nodes.every(n => n.services.mesh.state().config.length === 5))
    const leader = byId(first.peerId)
    const behind = nodes.filter(n => n !== leader && n !== holder)
    for (const n of behind) faults.get(n)!.set({ planes: ['state'], drop: 1 })
    // acknowledged by the leader and the holder only: 2 of 5, never committed
    await expect(leader.services.mesh.propose({ op: 'set', key: 'uncommitted', value: 42 }, { signal: AbortSignal.timeout(1500) })).rejects.toThrow()
    expect(holder.services.mesh.state().data.uncommitted).toBe(42)
    const newest = holder.services.mesh.state().version
    expect(behind.every(n => n.services.mesh.state().version < newest)).toBe(true)

    await leader.stop()
    for (const n of behind) faults.get(n)!.set(null)
    const rest = nodes.filter(n => n !== leader)
    const second = await waitFor('a new coordinator', () => agreed(rest))
    expect(behind.map(n => n.peerId.toString())).toContain(second.peerId)
    await waitFor('the holder\'s entry everywhere', () => rest.every(n => n.services.mesh.state().data.uncommitted === 42))
    expect(byId(second.peerId).services.mesh.state().version).toBeGreaterThan(newest)
  })
})
