import type { CircuitRelayService } from '@libp2p/circuit-relay-v2'
import type { GossipSub, GossipsubOpts } from '@libp2p/gossipsub'
import type { Identify } from '@libp2p/identify'
import type { ConnectionGater, Libp2p, PrivateKey } from '@libp2p/interface'
import type { Ping } from '@libp2p/ping'
import type { ConnectionManagerInit, ConnectionMonitorInit } from 'libp2p'
import type { Mesh, MeshInit } from './index.ts'

/** Options of `createMeshPeer` (Node and browser); every field is optional. */
export interface MeshPeerInit extends MeshInit {
  /** The node's identity. @default a new Ed25519 key */
  privateKey?: PrivateKey
  /**
   * Addresses to listen on.
   * @default Node: ['/ip4/127.0.0.1/tcp/0', '/ip4/127.0.0.1/tcp/0/ws']; browser: ['/p2p-circuit', '/webrtc']
   */
  listen?: string[]
  /** Node only: serve circuit relay v2, so browsers can reserve a slot and signal WebRTC. @default false */
  relayServer?: boolean
  /**
   * Browser only: allow dialing ws:// and private/loopback addresses, which the browser
   * connection gater refuses by default. For local and test deployments only. @default false
   */
  allowLocalDial?: boolean
  /** Extra gating (the test harness partitions with it). */
  connectionGater?: ConnectionGater
  /** @default { pingInterval: 1000, pingTimeout: { minTimeout: 1000, maxTimeout: 2000 } } (DESIGN §2) */
  connectionMonitor?: ConnectionMonitorInit
  /** @default { inboundConnectionThreshold: 256, maxIncomingPendingConnections: 128 } (local peers share one address) */
  connectionManager?: ConnectionManagerInit
  /** Overrides of `gossipOptions()`. */
  gossipsub?: Partial<GossipsubOpts>
  /** Start the node before returning. @default true */
  start?: boolean
}

export interface MeshServices extends Record<string, unknown> {
  identify: Identify
  ping: Ping
  pubsub: GossipSub
  mesh: Mesh
  relay?: CircuitRelayService
}

/** A libp2p node with the mesh service (`node.services.mesh`). */
export type MeshNode = Libp2p<MeshServices>
