import type { ElectionRoleName, Capabilities, ElectionRecord, LayerRange, Member, MeshRole, MeshState, MeshView, Transaction } from './types.ts'
import type { GossipFaultInjector } from './faults.ts'
import type { GossipCounters } from './gossip-counters.ts'
import type { StatusChange } from './membership.ts'
import type { MeshTiming } from './timing.ts'
import type { TypedEventTarget } from '@libp2p/interface'
import type { AdmissionRole, Revocation } from './admission.ts'

export type { Capabilities, ElectionRecord, ElectionRoleName, GossipFaults, LayerRange, LinkKind, LogEntry, Member, MemberStatus, MeshLink, MeshRole, MeshState, MeshView, Transaction } from './types.ts'
export { mesh } from './mesh.ts'
export type { MeshComponents } from './mesh.ts'
export type { StatusChange } from './membership.ts'
export type { MeshTiming } from './timing.ts'
export type { VotingSet } from './quorum.ts'
export { InvalidMessageError, InvalidTransactionError, MeshConfigError, MeshNotStartedError, NotCoordinatorError, StateTooLargeError } from './errors.ts'
export { DEFAULT_TIMING, meshTiming } from './timing.ts'
export { GossipCounters } from './gossip-counters.ts'
export { gossipFaults } from './faults.ts'
export type { GossipFaultInjector, SettableGossipFaults } from './faults.ts'
export { gossipOptions, topicName, PLANES, TOPICS } from './gossip.ts'
export type { Plane, Topic } from './gossip.ts'
export { subscribeTopic } from './topic-subscription.ts'
export type { TopicPubsub, TopicSubscriptionInit } from './topic-subscription.ts'
export { anchored, electionSlot, isMajority, majority, votingSet } from './quorum.ts'
export { StateLog, compareHeads, emptyState } from './state-log.ts'
export { parseMembership } from './messages/membership.ts'
export type { Announce } from './messages/membership.ts'
export { parseElection } from './messages/election.ts'
export type { ElectionMessage, Heartbeat, PreVote, PreVoteRequest, Vote, VoteRequest } from './messages/election.ts'
export { parseStateMessage, parseTransaction } from './messages/state.ts'
export type { Append, Snapshot, StateMessage, SyncRequest } from './messages/state.ts'
export { encodeMessage } from './codec.ts'
export { detectRuntime, defaultCapabilities } from './runtime.ts'
export { linkKind, meshView } from './view.ts'
export type { ViewConnection } from './view.ts'
export { createMeshPeer } from './peer.ts'
export { Admission, ADMISSION_ROLES, InvalidTicketError, decodeTicket, isPeerIdString, isPrivateMeshId, issueTicket, operatorKeyOf, peerIdOfKey, privateMeshId, REVOKED_KEY_PREFIX, signRevocation, TICKET_KEY_PREFIX, verifyRevocation, verifyTicket } from './admission.ts'
export type { AdmissionRole, Revocation, Ticket, TicketFault } from './admission.ts'
export type { MeshNode, MeshPeerInit, MeshServices } from './peer.ts'

export interface MeshEvents {
  /** Role, term or coordinator changed. */
  coordinator: CustomEvent<{ coordinator: string | null, term: number, role: ElectionRoleName }>
  /** A member's status changed (alive / suspect / dead), with the local time and why. */
  member: CustomEvent<StatusChange>
  /** The local copy of the replicated state moved to a new head. */
  state: CustomEvent<{ version: number, term: number }>
  /** An internal error was caught (the peer keeps running). */
  error: CustomEvent<Error>
}

/** Options of the `mesh()` service; every field is optional. */
export interface MeshInit {
  /** Peers with different mesh ids use different topics. @default 'default' */
  meshId?: string
  /** Announced role; the bootstrap node has no special authority. @default 'peer' */
  role?: MeshRole
  /** May stand for coordinator (every member votes). @default true */
  eligible?: boolean
  /**
   * What this peer offers, or a probe run once at start (e.g. a short engine benchmark).
   * @default runtime detected, cpu backend, memoryBytes 0, no throughput
   */
  capabilities?: Capabilities | (() => Promise<Capabilities>)
  /** Layer ranges held. @default [] */
  layers?: LayerRange[]
  /**
   * Before the first configuration is in the replicated state, a candidate needs a
   * majority of at least this many members (see quorum.ts). @default 1
   */
  expectedMembers?: number
  /**
   * Multiaddrs (ending in /p2p/<id>) of bootstrap nodes, dialed at start and again whenever
   * this peer has no connection at all. @default []
   */
  bootstrap?: string[]
  /** Connections discovery keeps open to other members (it dials until it has this many). @default 6 */
  targetConnections?: number
  /** Periods and timeouts. @default DEFAULT_TIMING */
  timing?: Partial<MeshTiming>
  /** Counters given to gossipsub's `metricsRegister` (the factories do this). */
  gossipCounters?: GossipCounters
  /**
   * Drops or delays received gossip before validation (test harnesses: `gossipFaults()`).
   * @default none: every message is processed
   */
  faults?: GossipFaultInjector
  /**
   * Private meshes (`meshId` = `private-<operator peer id>`): this peer's admission ticket,
   * signed by the operator (admission.ts). Without one the peer runs unadmitted (ignored by the
   * election, the planner and stage servers) until the replicated state brings it one.
   * @default none
   */
  ticket?: string
}

/** A peer's view of and handle on the mesh (the `mesh` service of a libp2p node). */
export interface Mesh extends TypedEventTarget<MeshEvents> {
  readonly peerId: string
  /** The mesh id its topics are named by (`topicName(meshId, …)`). */
  readonly meshId: string
  coordinator: () => { peerId: string | null, term: number, role: ElectionRoleName }
  /** Members this peer knows; in a private mesh only those holding a valid ticket. */
  members: () => Member[]
  member: (peerId: string) => Member | undefined
  /** This peer's copy of the replicated state (read only). */
  state: () => Readonly<MeshState>
  /** Newest version known committed (coordinator only; 0 elsewhere). */
  commitVersion: () => number
  /** Coordinators this peer saw, per term (`won` or accepted by `heartbeat`). */
  history: () => ElectionRecord[]
  /** Rejected messages by reason (ours and gossipsub's). */
  rejections: () => Record<string, number>
  /** Gossipsub RPC bytes and counts sent and received by this peer. */
  traffic: () => { sentBytes: number, recvBytes: number, sentRpcs: number, recvRpcs: number }
  view: () => MeshView
  /** As coordinator: append `set`/`delete` to the log; resolves with its version once committed. */
  propose: (tx: Transaction, options?: { signal?: AbortSignal }) => Promise<number>
  /** Private mesh: does `peerId` hold a valid, unrevoked ticket (with `role`)? Always true in an open mesh. */
  admitted: (peerId: string, role?: AdmissionRole) => boolean
  isPrivate: () => boolean
  /** Private mesh: put an operator-signed ticket or revocation into the replicated state (relayed to the coordinator). */
  publishAdmission: (record: { ticket: string } | { revocation: Revocation }, options?: { signal?: AbortSignal }) => Promise<void>
  setLayers: (layers: LayerRange[]) => void
  setLoad: (load: number) => void
  setCapabilities: (capabilities: Capabilities) => void
}
