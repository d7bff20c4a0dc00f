import type { Heartbeat, ElectionMessage, Vote } from './messages/election.ts'
import type { VotingSet } from './quorum.ts'
import type { Timers } from './timers.ts'
import type { MemberStatus } from './types.ts'

export interface ElectionTiming {
  heartbeatIntervalMs: number
  electionTimeoutMinMs: number
  electionTimeoutMaxMs: number
  fastElectionMinMs: number
  fastElectionMaxMs: number
  leaseMs: number
  checkQuorumMs: number
}

/** What the election needs from the rest of the peer. */
export interface ElectionDeps {
  self: string
  eligible: boolean
  timing: ElectionTiming
  now: () => number
  /** @default the platform's timers */
  timers?: Timers
  /** Uniform in [0, 1): the jitter of election timeouts. @default Math.random */
  random?: () => number
  publish: (msg: ElectionMessage) => void
  votingSet: () => VotingSet
  /** Peers whose votes a genesis election needs; null while not known yet (quorum.ts `GenesisAnchors`). */
  anchors: () => ReadonlySet<string> | null
  /** Head of this peer's replicated state. */
  head: () => { version: number, term: number }
  status: (peerId: string) => MemberStatus | undefined
  /** Alive members whose last announcement names `coordinator` for `term`. */
  announcers: (term: number, coordinator: string) => string[]
  /** Members other than this peer whose status is alive. */
  aliveOthers: () => number
  /**
   * This peer's place among the members that may stand (alive, eligible, in the voting set),
   * in an order shuffled per term that every peer computes alike: `rank` of `count`.
   */
  slot: (term: number) => { rank: number, count: number }
  /** Count a rejected message by reason. */
  reject: (reason: string) => void
  /** Role, term or coordinator changed. */
  onChange: () => void
  /** This peer won `term`; `votes` are the granted votes it counted. */
  onElected: (term: number, votes: Vote[]) => void
  /** A heartbeat of the current coordinator was accepted. */
  onHeartbeat: (hb: Heartbeat) => void
  /** Fields of the next heartbeat that come from the replicated state. */
  heartbeatState: () => Pick<Heartbeat, 'stateVersion' | 'stateTerm' | 'commitVersion' | 'ready'>
}
