import { afterEach, describe, expect, it } from 'vitest'
import { createMeshPeer, gossipFaults } from '../src/index.ts'
import { sleep, stopAll, waitFor } from './fixture.ts'
import type { Capabilities, MeshNode } from '../src/index.ts'

const gpu: Capabilities = {
  runtime: { name: 'chrome', version: '141' },
  backend: { kind: 'webgpu', adapter: { vendor: 'google', architecture: 'swiftshader' }, limits: { maxStorageBufferBindingSize: 1073741824, maxComputeWorkgroupSizeX: 256 } },
  memoryBytes: 2 ** 31,
  throughput: { model: 'tiny-gqa2', decodeTokensPerSecond: 812.5 }
}

describe('membership', () => {
  let nodes: MeshNode[] = []
  afterEach(async () => { await stopAll(nodes); nodes = [] })

  it('announces what each peer offers, and a probe at start measures it', async () => {
    const a = await createMeshPeer({ capabilities: gpu, layers: [[0, 2]] })
    const boot = [a.getMultiaddrs()[0].toString()]
    let probed = 0
    const b = await createMeshPeer({ bootstrap: boot, role: 'bootstrap', capabilities: async () => { probed++; return { runtime: { name: 'node', version: process.versions.node }, backend: { kind: 'cpu' }, memoryBytes: 1e9, throughput: { model: 'probe', decodeTokensPerSecond: 99 } } } })
    nodes = [a, b]
    expect(probed).toBe(1)
    await waitFor('each sees the other', () => nodes.every(n => n.services.mesh.members().length === 2))
    const seen = b.services.mesh.member(a.peerId.toString())!
    expect(seen.capabilities).toEqual(gpu)
    expect(seen.layers).toEqual([[0, 2]])
    expect(seen.status).toBe('alive')
    expect(a.services.mesh.member(b.peerId.toString())!.capabilities.throughput).toEqual({ model: 'probe', decodeTokensPerSecond: 99 })

    a.services.mesh.setLayers([[0, 3], [5, 6]])
    a.services.mesh.setLoad(0.75)
    await waitFor('new layers and load announced', () => {
      const m = b.services.mesh.member(a.peerId.toString())
      return m?.layers.length === 2 && m.load === 0.75
    })

    const view = b.services.mesh.view()
    expect(view.peers).toHaveLength(2)
    const row = view.peers.find(p => p.peerId === a.peerId.toString())!
    expect(row).toMatchObject({ role: 'peer', runtime: gpu.runtime, backend: gpu.backend, status: 'alive', layers: [[0, 3], [5, 6]] })
    expect(row.lastSeenMs).toBeGreaterThanOrEqual(0)
    expect(row.lastSeenMs).toBeLessThan(5000)
    expect(view.peers.find(p => p.peerId === b.peerId.toString())!.role).toBe('bootstrap')
  })

  it('marks a peer whose connections dropped suspect, then dead, with times in order; a silent one too', async () => {
    const faults = gossipFaults() // on a's received gossip
    const a = await createMeshPeer({ faults })
    const boot = [a.getMultiaddrs()[0].toString()]
    const b = await createMeshPeer({ bootstrap: boot })
    const c = await createMeshPeer({ bootstrap: boot })
    nodes = [a, b, c]
    const cid = c.peerId.toString()
    await waitFor('all see all', () => nodes.every(n => n.services.mesh.members().filter(m => m.status === 'alive').length === 3))
    // discovery connects b and c directly (both bootstrapped off a)
    await waitFor('b and c connected', () => b.getConnections().some(x => x.remotePeer.equals(c.peerId)) && [a, b].every(n => n.services.mesh.member(cid)?.connected === true))
    const killedAt = Date.now()
    for (const conn of c.getConnections()) conn.abort(new Error('killed'))
    await c.stop()
    await waitFor('dead on a and b', () => [a, b].every(n => n.services.mesh.member(cid)?.status === 'dead'))
    for (const n of [a, b]) {
      const t = n.services.mesh.member(cid)!.transitions
      const suspect = t.findLast(x => x.status === 'suspect')!
      const dead = t.findLast(x => x.status === 'dead')!
      expect(suspect.at).toBeGreaterThanOrEqual(killedAt)
      expect(dead.at).toBeGreaterThan(suspect.at)
      expect(suspect.reason).toBe('disconnected')
    }

    // silent but connected: gossip from b is dropped at a, so only silence gives it away
    const bid = b.peerId.toString()
    faults.set({ from: [bid], drop: 1 })
    await waitFor('b suspect on a', () => a.services.mesh.member(bid)?.status === 'suspect')
    await waitFor('b dead on a', () => a.services.mesh.member(bid)?.status === 'dead')
    expect(a.services.mesh.member(bid)!.transitions.findLast(x => x.status === 'suspect')!.reason).toBe('silent')
    faults.set(null)
    await waitFor('b alive again', () => a.services.mesh.member(bid)?.status === 'alive')
  })

  it('stops cleanly: nothing is published after stop and the node can be started again', async () => {
    nodes = [await createMeshPeer(), await createMeshPeer()]
    const [a, b] = nodes
    await b.dial(a.getMultiaddrs()[0])
    await waitFor('each sees the other', () => nodes.every(n => n.services.mesh.members().length === 2))
    await b.stop()
    expect(b.status).toBe('stopped')
    const sent = b.services.mesh.traffic().sentBytes
    await sleep(1000)
    expect(b.services.mesh.traffic().sentBytes).toBe(sent)
    await b.start()
    await b.dial(a.getMultiaddrs()[0])
    await waitFor('b announces again', () => a.services.mesh.member(b.peerId.toString())?.status === 'alive' && b.services.mesh.traffic().sentBytes > sent)
  })
})
