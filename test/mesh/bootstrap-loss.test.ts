import { afterEach, describe, expect, it } from 'vitest'
import { MeshHarness } from './harness/harness.ts'

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

describe('losing the bootstrap node (child processes)', () => {
  let h: MeshHarness | undefined
  afterEach(async () => { await h?.close() })

  it('SIGKILL of the bootstrap: the Node peers stay connected to each other and keep (or re-elect) a coordinator', async () => {
    h = new MeshHarness()
    const boot = await h.add({ bootstrapNode: true })
    const peers = await Promise.all(Array.from({ length: 4 }, async () => await h!.add({ bootstrap: [boot.addrs[0]] })))
    const ids = peers.map(p => p.id)
    await h.waitFor('one coordinator for all five', () => h!.agreed())
    // discovery through membership: every peer is directly connected to every other, not only to the bootstrap
    await h.waitFor('peers connected to each other', () => peers.every(p => ids.filter(id => id !== p.id).every(id => p.snapshot().connections.includes(id))))
    // everyone is a voting member (the coordinator adds joiners one at a time)
    await h.waitFor('all five in the configuration', () => [boot, ...peers].every(p => p.snapshot().config.length === 5))

    await boot.kill()
    const after = await h.waitFor('a coordinator among the four', () => h!.agreed(peers))
    expect(after.peerId).not.toBe(boot.id)
    expect(ids).toContain(after.peerId)
    // stable: the same coordinator keeps heartbeating, peers stay connected
    await sleep(2000)
    expect(h.agreed(peers)).toEqual(after)
    for (const p of peers) {
      expect(p.snapshot().connections).not.toContain(boot.id)
      expect(ids.filter(id => id !== p.id).every(id => p.snapshot().connections.includes(id))).toBe(true)
    }
    await h.waitFor('the bootstrap declared dead', () => peers.every(p => p.snapshot().members.find(m => m.peerId === boot.id)?.status === 'dead'))
    // and, dead long enough, removed from the configuration by the coordinator
    await h.waitFor('the bootstrap out of the configuration', () => peers.every(p => p.snapshot().config.length === 4 && !p.snapshot().config.includes(boot.id)))
    expect(h.safety().violations).toEqual([])
  })
})
