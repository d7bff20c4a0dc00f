import { circuitRelayServer } from '@libp2p/circuit-relay-v2'
import { gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { noise } from '@libp2p/noise'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { webSockets } from '@libp2p/websockets'
import { yamux } from '@libp2p/yamux'
import { createLibp2p } from 'libp2p'
import type { ServiceFactoryMap } from 'libp2p'
import { PING_INTERVAL_MS, PING_TIMEOUT_MAX_MS, PING_TIMEOUT_MIN_MS, DEFAULT_MESH_ID } from './constants.ts'
import { GossipCounters } from './gossip-counters.ts'
import { gossipOptions } from './gossip.ts'
import { mesh } from './mesh.ts'
import type { MeshNode, MeshPeerInit } from './peer-init.ts'

export type { MeshNode, MeshPeerInit, MeshServices } from './peer-init.ts'

/**
 * A Node peer: TCP and WebSockets, Noise, yamux, identify, ping, gossipsub (StrictSign) and
 * the mesh service; optionally a circuit relay v2 server for browsers. The browser build
 * (peer.browser.ts, through the package.json `browser` map) has the same signature.
 */
export async function createMeshPeer (init: MeshPeerInit = {}): Promise<MeshNode> {
  // ping allows 1 outbound stream per connection by default; the connection monitor's pings
  // overlap when a peer is slow to answer, and the refused stream aborts the whole connection
  const counters = new GossipCounters()
  const meshId = init.meshId ?? DEFAULT_MESH_ID
  const services: ServiceFactoryMap = {
    identify: identify(),
    ping: ping({ maxOutboundStreams: 4, maxInboundStreams: 8 }),
    pubsub: gossipsub(gossipOptions(meshId, counters, init.gossipsub)),
    // libp2p hands a service the other services (pubsub) in its components; its types do not say so
    mesh: mesh({ ...init, gossipCounters: counters }) as unknown as ServiceFactoryMap[string]
  }
  if (init.relayServer === true) services.relay = circuitRelayServer({ reservations: { maxReservations: 256 } })
  const node = await createLibp2p({
    privateKey: init.privateKey,
    start: false,
    addresses: { listen: init.listen ?? ['/ip4/127.0.0.1/tcp/0', '/ip4/127.0.0.1/tcp/0/ws'] },
    transports: [tcp(), webSockets()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionGater: init.connectionGater,
    connectionManager: { inboundConnectionThreshold: 256, maxIncomingPendingConnections: 128, ...init.connectionManager },
    connectionMonitor: init.connectionMonitor ?? { pingInterval: PING_INTERVAL_MS, pingTimeout: { minTimeout: PING_TIMEOUT_MIN_MS, maxTimeout: PING_TIMEOUT_MAX_MS } },
    services
  }) as unknown as MeshNode
  if (init.start !== false) await node.start()
  return node
}
