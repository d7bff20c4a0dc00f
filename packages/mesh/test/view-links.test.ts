// Link kinds in the mesh view (`GET /api/mesh` `peers[].links`): each member's row carries the
// viewing peer's open connections to it, with the transport read from the remote multiaddr and
// the connection monitor's ping round trip.
import { afterEach, describe, expect, it } from 'vitest'
import { createMeshPeer, linkKind } from '../src/index.ts'
import type { MeshNode, MeshView } from '../src/index.ts'
import { stopAll, waitFor } from './fixture.ts'

const ID = '12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp'

describe('link kinds', () => {
  let nodes: MeshNode[] = []
  afterEach(async () => { await stopAll(nodes); nodes = [] })

  it('reads the transport of a remote multiaddr', () => {
    expect(linkKind('/ip4/10.0.0.5/tcp/4001')).toBe('tcp')
    expect(linkKind('/ip4/10.0.0.5/tcp/4002/ws')).toBe('websocket')
    expect(linkKind('/dns4/example.org/tcp/443/tls/ws')).toBe('websocket')
    expect(linkKind('/ip4/10.0.0.5/tcp/443/wss')).toBe('websocket')
    expect(linkKind(`/ip4/10.0.0.5/tcp/4002/ws/p2p/${ID}/p2p-circuit`)).toBe('relay')
    expect(linkKind(`/ip4/10.0.0.5/tcp/4002/ws/p2p/${ID}/p2p-circuit/webrtc`)).toBe('webrtc')
    expect(linkKind('/ip4/10.0.0.5/udp/4003/webrtc-direct/certhash/uEiA')).toBe('webrtc')
    expect(linkKind('/ip4/10.0.0.5/udp/4003/quic-v1')).toBe('other')
  })

  it('shows a peer dialled over TCP as tcp and one over WebSockets as websocket, with ping round trips', async () => {
    const a = await createMeshPeer({ listen: ['/ip4/127.0.0.1/tcp/0', '/ip4/127.0.0.1/tcp/0/ws'] })
    const addrs = a.getMultiaddrs().map(String)
    const tcp = await createMeshPeer({ bootstrap: [addrs.find(x => !x.includes('/ws'))!], listen: [] })
    const ws = await createMeshPeer({ bootstrap: [addrs.find(x => x.includes('/ws'))!], listen: [] })
    nodes = [a, tcp, ws]
    const row = (id: string): MeshView['peers'][number] | undefined => a.services.mesh.view().peers.find(p => p.peerId === id)
    // the connection monitor pings every second; wait for a round trip on both
    await waitFor('both links with a ping round trip', () => [tcp, ws].every(n => row(n.peerId.toString())?.links.some(l => l.rttMs !== undefined) === true), 20_000)
    expect(row(tcp.peerId.toString())!.links.map(l => l.kind)).toEqual(['tcp'])
    expect(row(ws.peerId.toString())!.links.map(l => l.kind)).toEqual(['websocket'])
    expect(row(tcp.peerId.toString())!.links[0].direction).toBe('inbound')
    for (const n of [tcp, ws]) expect(row(n.peerId.toString())!.links[0].rttMs).toBeGreaterThanOrEqual(0)
    // a peer has no link to itself
    expect(row(a.peerId.toString())!.links).toEqual([])
  }, 30_000)
})
