import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { agreed, sleep, startPeers, stopAll, waitFor } from './fixture.ts'
import { createRogue, randomKey, sendRaw } from './rogue.ts'
import type { MeshNode } from '../src/index.ts'

/**
 * Bad input from real peers never crashes a peer, is rejected with a counted reason, and
 * does not disturb the election.
 */
describe('bad gossip from real peers', () => {
  let all: MeshNode[] = []
  let live: MeshNode[] = []
  let coordinator: { peerId: string, term: number }
  let victim: MeshNode
  let victimAddr: string
  const cleanup: Array<() => Promise<void>> = []

  beforeAll(async () => {
    all = await startPeers(4)
    const first = await waitFor('a coordinator', () => agreed(all))
    await waitFor('all four in the configuration', () => all.every(n => n.services.mesh.state().config.length === 4))
    // one re-election, so that term 1 is stale
    const old = all.find(n => n.peerId.toString() === first.peerId)!
    await old.stop()
    live = all.filter(n => n !== old)
    coordinator = await waitFor('a second coordinator', () => agreed(live))
    victim = live.find(n => n.peerId.toString() !== coordinator.peerId)!
    victimAddr = victim.getMultiaddrs()[0].toString()
  })

  afterAll(async () => {
    await Promise.all(cleanup.map(async c => { await c() }))
    await stopAll(all)
  })

  const counts = (n: MeshNode = victim): Record<string, number> => n.services.mesh.rejections()
  async function rogue (): Promise<Awaited<ReturnType<typeof createRogue>>> {
    const r = await createRogue(victimAddr)
    cleanup.push(async () => { await r.node.stop() })
    return r
  }

  it('rejects malformed, oversized, unknown and misattributed payloads with a reason each', async () => {
    const cases: Array<[string, Parameters<Awaited<ReturnType<typeof createRogue>>['publish']>]> = [
      ['malformed', ['election', new TextEncoder().encode('{not json')]],
      ['oversized', ['election', { type: 'vote', pad: 'x'.repeat(4096) }]],
      ['unknown-type', ['state', { type: 'bogus', term: 1 }]],
      ['sender-mismatch', ['election', { type: 'heartbeat', term: coordinator.term, coordinator: coordinator.peerId, stateVersion: 0, stateTerm: 0, commitVersion: 0, ready: true }]]
    ]
    for (const [reason, [plane, payload]] of cases) {
      const before = counts()[reason] ?? 0
      const r = await rogue() // a fresh peer each: three rejects get a peer graylisted
      await r.publish(plane, payload)
      await waitFor(`a counted "${reason}"`, () => (counts()[reason] ?? 0) > before)
    }
  })

  it('rejects unsigned, forged-signature, wrong-key and undecodable RPCs (StrictSign)', async () => {
    const impersonated = coordinator.peerId
    const forger = await randomKey()
    const heartbeat = { type: 'heartbeat', term: coordinator.term, coordinator: impersonated, stateVersion: 0, stateTerm: 0, commitVersion: 0, ready: true }
    const cases: Array<[string, Parameters<typeof sendRaw>[1]]> = [
      ['gossip-invalid-seqno', [[{ plane: 'election', data: heartbeat, seqno: false }]]], // anonymous: no from, seqno, signature
      ['gossip-invalid-signature', [[{ plane: 'election', data: heartbeat, from: impersonated }]]], // unsigned
      ['gossip-invalid-signature', [[{ plane: 'election', data: heartbeat, from: impersonated, signWith: forger }]]], // forged signature
      ['gossip-invalid-peerid', [[{ plane: 'election', data: heartbeat, from: impersonated, signWith: forger, key: forger }]]], // key is not from's
      ['gossip-malformed-rpc', [new Uint8Array([0xff, 0xff, 0xff, 0x0f, 0x01])]],
      ['gossip-stream-error', [new Uint8Array(3 * 1024 * 1024)]] // a frame over the 2 MiB RPC limit
    ]
    for (const [reason, frames] of cases) {
      const before = counts()[reason] ?? 0
      await sendRaw(victimAddr, frames)
      await waitFor(`a counted "${reason}"`, () => (counts()[reason] ?? 0) > before)
    }
    expect(agreed(live)).toEqual(coordinator)
  })

  it('stale votes, stale or unproven coordinators and far-future vote requests change nothing', async () => {
    const r = await rogue()
    const stale = coordinator.term - 1
    const before = counts()
    await r.publish('election', { type: 'vote', term: stale, candidate: coordinator.peerId, voter: r.id, known: 3, lastVersion: 0, lastTerm: 0 })
    await r.publish('election', { type: 'heartbeat', term: stale, coordinator: r.id, stateVersion: 0, stateTerm: 0, commitVersion: 0, ready: true })
    await r.publish('election', { type: 'heartbeat', term: coordinator.term, coordinator: r.id, stateVersion: 99, stateTerm: coordinator.term, commitVersion: 99, ready: true })
    await r.publish('election', { type: 'heartbeat', term: coordinator.term + 3, coordinator: r.id, stateVersion: 99, stateTerm: coordinator.term + 3, commitVersion: 99, ready: true })
    await r.publish('election', { type: 'vote-request', term: coordinator.term + 10, candidate: r.id, lastVersion: 1000, lastTerm: coordinator.term + 10 })
    await r.publish('state', { type: 'append', term: coordinator.term, coordinator: r.id, entries: [{ version: 99, term: coordinator.term, tx: { op: 'set', key: 'x', value: 1 } }], commitVersion: 99 })
    for (const reason of ['stale-vote', 'stale-term', 'not-elected', 'unproven-coordinator']) {
      await waitFor(`a counted "${reason}"`, () => (counts()[reason] ?? 0) > (before[reason] ?? 0))
    }
    await sleep(1500)
    // still the same coordinator and term everywhere, and nobody took the rogue's state
    expect(agreed(live)).toEqual(coordinator)
    for (const n of live) expect(n.services.mesh.state().data).not.toHaveProperty('x')
    expect(live.every(n => n.status === 'started')).toBe(true)
  })

  it('graylists a peer that keeps sending invalid messages', async () => {
    const r = await rogue()
    await waitFor('gossip-graylisted', () => {
      void r.publish('election', new TextEncoder().encode('garbage')).catch(() => {})
      return (counts()['gossip-graylisted'] ?? 0) > 0
    }, 15_000)
    expect(agreed(live)).toEqual(coordinator)
  })
})
