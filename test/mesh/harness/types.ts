import type { ElectionRecord, GossipFaults, MeshTiming, Transaction } from '@shardmesh/mesh'

/** How to start one harness peer. */
export interface PeerSpec {
  /** A child process (can be SIGKILLed) or a node in the test process. @default 'process' */
  kind?: 'process' | 'inproc'
  /** Bootstrap role: relay server, role 'bootstrap'. @default false */
  bootstrapNode?: boolean
  /** Multiaddrs to bootstrap from. @default the harness's first peer */
  bootstrap?: string[]
  eligible?: boolean
  meshId?: string
  expectedMembers?: number
  targetConnections?: number
  timing?: Partial<MeshTiming>
}

/** What a peer reports about itself. */
export interface PeerSnapshot {
  peerId: string
  addrs: string[]
  coordinator: string | null
  term: number
  role: 'follower' | 'candidate' | 'coordinator'
  stateVersion: number
  stateTerm: number
  config: string[]
  data: Record<string, unknown>
  members: Array<{ peerId: string, status: string, transitions: Array<{ status: string, at: number, reason: string }> }>
  rejections: Record<string, number>
  traffic: { sentBytes: number, recvBytes: number, sentRpcs: number, recvRpcs: number }
  connections: string[]
  at: number
}

/** Parent → child. */
export type Command =
  | { id: number, cmd: 'block', peers: string[] }
  | { id: number, cmd: 'unblock' }
  | { id: number, cmd: 'faults', faults: GossipFaults | null }
  | { id: number, cmd: 'propose', tx: Transaction }
  | { id: number, cmd: 'stop' }

/** Child → parent. */
export type Report =
  | { type: 'ready', snapshot: PeerSnapshot }
  | { type: 'snapshot', snapshot: PeerSnapshot }
  | { type: 'history', records: ElectionRecord[] }
  | { type: 'reply', id: number, ok: boolean, value?: unknown, error?: string }
