import { afterEach, describe, expect, it } from 'vitest'
import { MeshHarness } from './harness/harness.ts'
import type { PeerHandle } from './harness/harness.ts'

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

describe('partitions (5 in-process peers, connection gaters)', () => {
  let h: MeshHarness | undefined
  afterEach(async () => { await h?.close() })

  it('2–3 split: the majority elects, the minority has none; after healing one coordinator remains with the higher term', async () => {
    h = new MeshHarness({ kind: 'inproc' })
    const peers = await h.start(5)
    const before = await h.waitFor('one agreed coordinator', () => h!.agreed())
    await h.waitFor('all five in the configuration', () => peers.every(p => p.snapshot().config.length === 5))
    // the old coordinator and one other peer end up on the minority side
    const old = peers.find(p => p.id === before.peerId)!
    const minority = [old, peers.find(p => p !== old)!]
    const majority = peers.filter(p => !minority.includes(p))
    await h.partition([minority, majority])

    const elected = await h.waitFor('a coordinator on the majority side', () => h!.agreed(majority))
    expect(majority.map(p => p.id)).toContain(elected.peerId)
    expect(elected.term).toBeGreaterThan(before.term)
    await h.waitFor('no coordinator on the minority side', () => minority.every(p => p.snapshot().coordinator === null && p.snapshot().role !== 'coordinator'))
    // and it stays that way; pre-vote keeps the minority from inflating its term
    const sample = async (): Promise<void> => {
      for (let i = 0; i < 12; i++) {
        for (const p of minority) {
          expect(p.snapshot().role).not.toBe('coordinator')
          expect(p.snapshot().term).toBe(before.term)
        }
        expect(h!.coordinators(majority)).toHaveLength(1)
        await sleep(250)
      }
    }
    await sample()

    await h.heal()
    const after = await h.waitFor('one coordinator for all five after healing', () => h!.agreed(peers), 30_000)
    expect(after.term).toBeGreaterThanOrEqual(elected.term)
    expect(after.term).toBeGreaterThan(before.term)
    expect(h.coordinators(peers)).toHaveLength(1)
    expect(old.snapshot().role).toBe('follower')
    // the whole mesh is one voting configuration again
    await h.waitFor('all five back in the configuration', () => peers.every((p: PeerHandle) => p.snapshot().config.length === 5))
    expect(h.safety().violations).toEqual([])
  })
})
