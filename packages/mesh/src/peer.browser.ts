import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { noise } from '@libp2p/noise'
import { ping } from '@libp2p/ping'
import { webRTC } from '@libp2p/webrtc'
import { webSockets } from '@libp2p/websockets'
import { yamux } from '@libp2p/yamux'
import { createLibp2p } from 'libp2p'
import type { ServiceFactoryMap } from 'libp2p'
import { PING_INTERVAL_MS, PING_TIMEOUT_MAX_MS, PING_TIMEOUT_MIN_MS, DEFAULT_MESH_ID, TAB_MAX_STREAM_WINDOW } from './constants.ts'
import { GossipCounters } from './gossip-counters.ts'
import { gossipOptions } from './gossip.ts'
import { mesh } from './mesh.ts'
import type { MeshNode, MeshPeerInit } from './peer-init.ts'

export type { MeshNode, MeshPeerInit, MeshServices } from './peer-init.ts'

/**
 * A browser peer (DESIGN §2): WebSockets to the bootstrap/relay, a circuit relay v2
 * reservation for signalling, WebRTC for direct peer connections (after the upgrade the
 * connection is direct). Dial failures (including the @libp2p/webrtc 6.0.33 dial race,
 * which needs the pnpm patch) are retried with backoff by the mesh's discovery.
 */
export async function createMeshPeer (init: MeshPeerInit = {}): Promise<MeshNode> {
  const counters = new GossipCounters()
  const meshId = init.meshId ?? DEFAULT_MESH_ID
  const gater = { ...init.connectionGater }
  // the default browser gater refuses ws:// and private addresses; local deployments need them
  if (init.allowLocalDial === true && gater.denyDialMultiaddr === undefined) gater.denyDialMultiaddr = () => false
  const node = await createLibp2p({
    privateKey: init.privateKey,
    start: false,
    addresses: { listen: init.listen ?? ['/p2p-circuit', '/webrtc'] },
    transports: [webSockets(), webRTC(), circuitRelayTransport()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux({ streamOptions: { maxStreamWindowSize: TAB_MAX_STREAM_WINDOW } })],
    connectionGater: gater,
    connectionManager: init.connectionManager,
    connectionMonitor: init.connectionMonitor ?? { pingInterval: PING_INTERVAL_MS, pingTimeout: { minTimeout: PING_TIMEOUT_MIN_MS, maxTimeout: PING_TIMEOUT_MAX_MS } },
    services: {
      identify: identify(),
      ping: ping({ maxOutboundStreams: 4, maxInboundStreams: 8 }),
      // gossip only over unlimited connections: between tabs that is the direct WebRTC one.
      // Streams opened on the relayed connection first are not moved when the relay dies
      // (the peers stay connected over WebRTC), so two tabs would lose each other's gossip.
      pubsub: gossipsub(gossipOptions(meshId, counters, { runOnLimitedConnection: false, ...init.gossipsub })),
      // libp2p hands a service the other services (pubsub) in its components; its types do not say so
      mesh: mesh({ ...init, gossipCounters: counters }) as unknown as ServiceFactoryMap[string]
    } satisfies ServiceFactoryMap
  }) as unknown as MeshNode
  if (init.start !== false) await node.start()
  return node
}
