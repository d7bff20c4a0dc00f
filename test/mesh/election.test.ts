import { afterEach, describe, expect, it } from 'vitest'
import { MeshHarness } from './harness/harness.ts'

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

describe('coordinator election over gossipsub (5 child-process peers)', () => {
  let h: MeshHarness | undefined
  afterEach(async () => { await h?.close() })

  it('elects exactly one coordinator; SIGKILL of it yields a new one in a higher term; one coordinator per term', async () => {
    h = new MeshHarness()
    const peers = await h.start(5)
    const first = await h.waitFor('one agreed coordinator', () => h!.agreed())
    expect(h.coordinators()).toHaveLength(1)
    // steady state: heartbeats keep the same coordinator and term
    await sleep(1500)
    expect(h.agreed()).toEqual(first)
    expect(h.coordinators()).toHaveLength(1)

    const victim = peers.find(p => p.id === first.peerId)!
    await victim.kill()
    const second = await h.waitFor('a new coordinator', () => { const a = h!.agreed(); return a !== undefined && a.peerId !== first.peerId && a })
    expect(second.term).toBeGreaterThan(first.term)
    expect(h.coordinators()).toHaveLength(1)
    expect(h.live()).toHaveLength(4)

    // every survivor marks the killed peer suspect, then dead
    await h.waitFor('the killed peer dead everywhere', () => h!.live().every(p => p.snapshot().members.find(m => m.peerId === victim.id)?.status === 'dead'))
    for (const p of h.live()) {
      const t = p.snapshot().members.find(m => m.peerId === victim.id)!.transitions
      const statuses = t.map(x => x.status)
      expect(statuses.lastIndexOf('suspect')).toBeLessThan(statuses.lastIndexOf('dead'))
      expect(statuses.lastIndexOf('suspect')).toBeGreaterThan(0)
    }
    const safety = h.safety()
    expect(safety.terms).toBeGreaterThanOrEqual(2)
    expect(safety.violations).toEqual([])
  })
})
