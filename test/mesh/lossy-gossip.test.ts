import { afterEach, describe, expect, it } from 'vitest'
import { MeshHarness } from './harness/harness.ts'

describe('delayed and lossy gossip (5 in-process peers)', () => {
  let h: MeshHarness | undefined
  afterEach(async () => { await h?.close() })

  it('with 20% of gossip dropped and the rest delayed 0–150 ms at every peer, one coordinator is elected and replaced', async () => {
    h = new MeshHarness({ kind: 'inproc' })
    const peers = await h.start(5)
    await Promise.all(peers.map(async p => { await p.setFaults({ drop: 0.2, delayMs: 0, jitterMs: 150 }) }))
    const first = await h.waitFor('one agreed coordinator', () => h!.agreed(), 30_000)
    await h.waitFor('all five in the configuration', () => peers.every(p => p.snapshot().config.length === 5), 30_000)
    expect(h.coordinators()).toHaveLength(1)
    // the faults really bit: every peer dropped some of what it received
    for (const p of peers) expect(p.snapshot().rejections['fault-dropped']).toBeGreaterThan(0)

    await peers.find(p => p.id === first.peerId)!.kill()
    const second = await h.waitFor('a new coordinator', () => { const a = h!.agreed(); return a !== undefined && a.peerId !== first.peerId && a }, 30_000)
    expect(second.term).toBeGreaterThan(first.term)
    expect(h.coordinators()).toHaveLength(1)
    expect(h.safety().violations).toEqual([])
  })
})
