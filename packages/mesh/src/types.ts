/** What a peer offers, announced with every membership heartbeat. */
export interface Capabilities {
  /** Where the peer runs: `{ name: 'node', version: '22.23.3' }`, `{ name: 'chrome', version: '141' }`. */
  runtime: { name: string, version: string }
  /** Compute backend, with adapter info and limits for WebGPU. */
  backend: {
    kind: 'cpu' | 'webgpu'
    adapter?: Record<string, string>
    limits?: Record<string, number>
  }
  /** Bytes of weights and KV cache the peer is willing to hold. */
  memoryBytes: number
  /** Measured at join by a short engine benchmark. */
  throughput?: { model: string, decodeTokensPerSecond: number }
}

export type MemberStatus = 'alive' | 'suspect' | 'dead'

export type MeshRole = 'peer' | 'bootstrap'

/** A layer range `[l0, l1)`. */
export type LayerRange = [number, number]

/** One member as this peer sees it. */
export interface Member {
  peerId: string
  role: MeshRole
  /** May stand for coordinator. */
  eligible: boolean
  capabilities: Capabilities
  addrs: string[]
  layers: LayerRange[]
  load: number
  /** Term and coordinator the member reported in its last announcement. */
  term: number
  coordinator: string | null
  /** Head of the member's copy of the replicated state. */
  stateVersion: number
  stateTerm: number
  status: MemberStatus
  /** Local clock (ms since epoch) of the last message heard from it. */
  lastSeen: number
  firstSeen: number
  /** A libp2p connection to the member is open. */
  connected: boolean
  /** Status changes with their local times (most recent last, bounded). */
  transitions: Array<{ status: MemberStatus, at: number, reason: string }>
}

export type ElectionRoleName = 'follower' | 'candidate' | 'coordinator'

/** One line of a peer's election history: who it saw as coordinator of a term, and how. */
export interface ElectionRecord {
  term: number
  coordinator: string
  /** `won`: this peer won the term; `heartbeat`: it accepted the coordinator's proven heartbeat. */
  how: 'won' | 'heartbeat'
  at: number
}

/** A transaction of the replicated log. */
export type Transaction =
  | { op: 'init', members: string[] }
  | { op: 'term', coordinator: string }
  | { op: 'add', peerId: string }
  | { op: 'remove', peerId: string, reason: string }
  | { op: 'set', key: string, value: unknown }
  | { op: 'delete', key: string }

export interface LogEntry {
  version: number
  /** Term of the coordinator that appended it. */
  term: number
  tx: Transaction
}

/** The replicated state at one version (what snapshots carry). */
export interface MeshState {
  version: number
  /** Term of the entry that produced this version (0 for the empty state). */
  term: number
  /** Voting members (the quorum is a majority of these). */
  config: string[]
  /** The coordinator of the newest `term` entry. */
  coordinator: { term: number, peerId: string } | null
  /** Application state (plan, sessions, …) set by `propose({ op: 'set' })`. */
  data: Record<string, unknown>
}

/** What `GET /api/mesh` returns. */
export interface MeshView {
  coordinator: string | null
  term: number
  stateVersion: number
  peers: Array<{
    peerId: string
    role: MeshRole
    runtime: Capabilities['runtime']
    backend: Capabilities['backend']
    /** Decode tokens/s it measured at join (on its backend), what `balanced` and `hardware_aware` plan by. */
    throughput?: Capabilities['throughput']
    status: MemberStatus
    layers: LayerRange[]
    /** Milliseconds since this peer last heard from it. */
    lastSeenMs: number
    /** This peer's open libp2p connections to it (none for itself, or when not directly connected). */
    links: MeshLink[]
  }>
}

/** A connection's transport, read from its remote multiaddr. */
export type LinkKind = 'webrtc' | 'relay' | 'websocket' | 'tcp' | 'other'

/** One open connection of the viewing peer to a member. */
export interface MeshLink {
  kind: LinkKind
  /** Round trip of the connection monitor's last ping (ms); absent until one completed. */
  rttMs?: number
  direction?: 'inbound' | 'outbound'
}

/** Fault injection on received gossip (test harness): drop or delay before validation and forwarding. */
export interface GossipFaults {
  /** Probability in [0, 1] of dropping a received message. */
  drop?: number
  /** Delay each received message by this many ms (plus up to `jitterMs`). */
  delayMs?: number
  jitterMs?: number
  /** Only messages from these peers (default all). */
  from?: string[]
  /** Only these planes (default all). */
  planes?: Array<'membership' | 'election' | 'state'>
}
