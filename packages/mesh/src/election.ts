import { HISTORY_LIMIT } from './constants.ts'
import { ElectionProofs } from './proof.ts'
import { anchored, isMajority } from './quorum.ts'
import { compareHeads } from './state-log.ts'
import { platformTimers } from './timers.ts'
import type { ElectionDeps } from './election-deps.ts'
import type { ElectionMessage, Heartbeat, PreVote, PreVoteRequest, Vote, VoteRequest } from './messages/election.ts'
import type { Timers } from './timers.ts'
import type { ElectionRecord, ElectionRoleName } from './types.ts'

export type { ElectionDeps, ElectionTiming } from './election-deps.ts'

/** A voter backs one pre-vote candidate per term within this part of the shortest election timeout. */
const PREVOTE_WINDOW_SHARE = 0.5
/** Above this many other live members, only the coordinator's neighbours would see it drop: no fast path. */
const FAST_PATH_MAX_PEERS = 16

/**
 * Raft's election rules over gossipsub (DESIGN §5) with pre-vote, leases and check-quorum:
 * - a follower that misses heartbeats for a random 1–2 s (150–450 ms once the coordinator's
 *   connection dropped) asks for pre-votes for term+1; only with a majority does it bump the
 *   term and ask for real votes, so a cut-off peer never inflates terms;
 * - a peer grants (pre-)votes only to members with a state head at least as new as its own,
 *   at most one vote per term, and only when its lease on the current coordinator expired;
 * - a candidate with a majority of the voting set becomes coordinator and heartbeats;
 * - a coordinator that sees less than a majority of its members alive for `checkQuorumMs` steps down;
 * - a heartbeat is accepted only for the current or a newer term, and only from a peer
 *   proven to have won it: a majority of granted votes observed on gossip, or a majority
 *   of members announcing it as coordinator of that term. Stale terms are rejected.
 */
export class Election {
  role: ElectionRoleName = 'follower'
  term = 0
  votedFor: string | null = null
  coordinator: string | null = null
  private readonly deps: ElectionDeps
  private lastHeartbeatAt = 0
  private lastQuorumAt = 0
  private readonly timers: Timers
  private readonly random: () => number
  private timer: unknown
  private deadline = 0
  private heartbeatTimer: unknown
  private preVote: { term: number, voters: Set<string> } | null = null
  /** The pre-vote this peer granted last (it does not stand itself right after backing another). */
  private preVoteGranted: { term: number, candidate: string, at: number } | null = null
  private readonly preVoteGrants = { term: 0, since: 0, candidates: new Set<string>() }
  private candidacy: { term: number, voters: Set<string>, known: number[], votes: Vote[] } | null = null
  private readonly proofs = new ElectionProofs()
  readonly history: ElectionRecord[] = []
  /** Highest term of any heartbeat, vote request or vote seen, proven or not: a candidate always goes above it. */
  private maxSeenTerm = 0
  /** Since when a member in a newer term has been seen while this peer coordinates `term`. */
  private outrankedSince: { term: number, at: number } | null = null
  private running = false

  constructor (deps: ElectionDeps) {
    this.deps = deps
    this.timers = deps.timers ?? platformTimers
    this.random = deps.random ?? Math.random
  }

  start (): void {
    this.running = true
    this.arm(this.randomTimeout())
  }

  stop (): void {
    this.running = false
    this.timers.clearTimeout(this.timer)
    this.timers.clearInterval(this.heartbeatTimer)
  }

  /**
   * A member announced `term`. A coordinator that sees a member of its voting set in a newer
   * term (a candidate that passed pre-vote but lost the race to it) can never be followed by
   * that member, and Raft would depose it; instead, once that lasted an election timeout (the
   * stragglers of one election settle together), it stands again above that term — its
   * followers back their own coordinator, so it wins in one round trip.
   */
  noteTerm (peer: string, term: number): void {
    if (!this.running || term <= this.term || !this.deps.votingSet().members.has(peer)) return
    this.maxSeenTerm = Math.max(this.maxSeenTerm, term)
    if (this.role !== 'coordinator') return
    const now = this.deps.now()
    if (this.outrankedSince === null || this.outrankedSince.term !== this.term) { this.outrankedSince = { term: this.term, at: now }; return }
    if (now - this.outrankedSince.at < this.deps.timing.electionTimeoutMaxMs) return
    this.outrankedSince = null
    this.stepDown(this.term)
    this.onTimeout()
  }

  /** The coordinator's connection dropped or it went suspect: shorten the wait. */
  coordinatorLost (): void {
    // in a large mesh only the coordinator's neighbours see its connection drop; the others
    // hold their lease for a while, so an early candidate would only stir up a failed round
    if (!this.running || this.role !== 'follower' || this.deps.aliveOthers() > FAST_PATH_MAX_PEERS) return
    const { fastElectionMinMs: lo, fastElectionMaxMs: hi } = this.deps.timing
    if (this.deadline - this.deps.now() > hi) this.arm(this.spread(lo, hi))
  }

  handle (msg: ElectionMessage): void {
    if (!this.running) return
    if (msg.type !== 'prevote-request' && msg.type !== 'prevote') this.maxSeenTerm = Math.max(this.maxSeenTerm, msg.term)
    switch (msg.type) {
      case 'prevote-request': this.onPreVoteRequest(msg); break
      case 'prevote': this.onPreVote(msg); break
      case 'vote-request': this.onVoteRequest(msg); break
      case 'vote': this.onVote(msg); break
      case 'heartbeat': this.onHeartbeat(msg); break
    }
  }

  private randomTimeout (): number {
    return this.spread(this.deps.timing.electionTimeoutMinMs, this.deps.timing.electionTimeoutMaxMs)
  }

  /**
   * A time in [lo, hi]: the peers that may stand get evenly spaced slots, in an order
   * shuffled per term, plus jitter within half a slot. Plain random timeouts make tens of
   * peers time out within the same message latency in a large mesh and split every vote;
   * distinct slots let the first one's request reach the others before their turn.
   */
  private spread (lo: number, hi: number): number {
    const { rank, count } = this.deps.slot(Math.max(this.term, this.maxSeenTerm) + 1)
    return lo + (hi - lo) * (rank + this.random() * 0.5) / Math.max(1, count)
  }

  private arm (delay: number): void {
    this.timers.clearTimeout(this.timer)
    this.deadline = this.deps.now() + delay
    this.timer = this.timers.setTimeout(() => { this.onTimeout() }, delay)
  }

  /** May this peer back `candidate`? Not while it follows a live coordinator — unless that coordinator is the candidate. */
  private leaseExpired (candidate: string): boolean {
    if (this.role === 'coordinator') return false
    if (this.coordinator === null || this.coordinator === candidate) return true
    if (this.deps.status(this.coordinator) !== 'alive') return true
    return this.deps.now() - this.lastHeartbeatAt > this.deps.timing.leaseMs
  }

  private upToDate (lastTerm: number, lastVersion: number): boolean {
    return compareHeads({ term: lastTerm, version: lastVersion }, this.deps.head()) >= 0
  }

  private mayLead (peerId: string): boolean {
    const set = this.deps.votingSet()
    return set.genesis || set.members.has(peerId)
  }

  private onTimeout (): void {
    if (!this.running || this.role === 'coordinator') return
    this.arm(this.randomTimeout())
    if (this.coordinator !== null) {
      // heartbeats missed: this peer no longer knows a coordinator
      this.coordinator = null
      this.deps.onChange()
    }
    if (!this.deps.eligible || !this.mayLead(this.deps.self)) return
    const head = this.deps.head()
    const g = this.preVoteGranted
    const proposed = Math.max(this.term, this.maxSeenTerm) + 1
    // this peer just backed another candidate for that term: let it finish first
    if (g !== null && g.term === proposed && g.candidate !== this.deps.self && this.deps.now() - g.at < this.deps.timing.electionTimeoutMinMs) return
    // never stand in a term someone may already have won (even one this peer could not verify)
    this.preVote = { term: proposed, voters: new Set([this.deps.self]) }
    this.preVoteGranted = { term: proposed, candidate: this.deps.self, at: this.deps.now() }
    this.deps.publish({ type: 'prevote-request', term: this.preVote.term, candidate: this.deps.self, lastVersion: head.version, lastTerm: head.term })
    this.checkPreVotes()
  }

  private onPreVoteRequest (msg: PreVoteRequest): void {
    if (msg.candidate === this.deps.self) return
    if (msg.term <= this.term) { this.deps.reject('stale-term'); return }
    if (!this.mayLead(msg.candidate) || !this.upToDate(msg.lastTerm, msg.lastVersion) || !this.leaseExpired(msg.candidate)) return
    // back one candidate per proposed term within half an election timeout, so that many
    // simultaneous candidates neither flood the mesh with N² grants nor all pass pre-vote and
    // split the real vote; the window reopens, so retries can still gather a majority
    const now = this.deps.now()
    const g = this.preVoteGrants
    if (g.term !== msg.term || now - g.since > this.deps.timing.electionTimeoutMinMs * PREVOTE_WINDOW_SHARE) { g.term = msg.term; g.since = now; g.candidates.clear() }
    if (!g.candidates.has(msg.candidate) && g.candidates.size >= 1) return
    g.candidates.add(msg.candidate)
    this.preVoteGranted = { term: msg.term, candidate: msg.candidate, at: now }
    this.deps.publish({ type: 'prevote', term: msg.term, candidate: msg.candidate, voter: this.deps.self })
  }

  private onPreVote (msg: PreVote): void {
    if (msg.candidate !== this.deps.self) return
    if (this.preVote === null || msg.term !== this.preVote.term) {
      if (msg.term < this.term) this.deps.reject('stale-vote') // (late grants for the term just won are not)
      return
    }
    this.preVote.voters.add(msg.voter)
    this.checkPreVotes()
  }

  private checkPreVotes (): void {
    const set = this.deps.votingSet()
    if (this.preVote === null || !isMajority(set, this.preVote.voters) || !anchored(set, this.preVote.voters, this.deps.anchors())) return
    const term = this.preVote.term
    this.preVote = null
    if (term > this.term && term > this.maxSeenTerm) this.startElection(term)
  }

  private startElection (term: number): void {
    this.term = term
    this.role = 'candidate'
    this.votedFor = this.deps.self
    this.coordinator = null
    this.timers.clearInterval(this.heartbeatTimer)
    this.candidacy = { term: this.term, voters: new Set([this.deps.self]), known: [this.deps.votingSet().size], votes: [] }
    this.proofs.observe(this.term, this.deps.self, this.deps.self)
    const head = this.deps.head()
    this.arm(this.randomTimeout())
    this.deps.onChange()
    this.deps.publish({ type: 'vote-request', term: this.term, candidate: this.deps.self, lastVersion: head.version, lastTerm: head.term })
    this.checkVotes()
  }

  private onVoteRequest (msg: VoteRequest): void {
    if (msg.candidate === this.deps.self) return
    this.proofs.observe(msg.term, msg.candidate, msg.candidate)
    if (msg.term < this.term) { this.deps.reject('stale-term'); return }
    if (!this.leaseExpired(msg.candidate)) return
    if (msg.term > this.term) this.stepDown(msg.term)
    if ((this.votedFor !== null && this.votedFor !== msg.candidate) || !this.mayLead(msg.candidate) || !this.upToDate(msg.lastTerm, msg.lastVersion)) return
    this.votedFor = msg.candidate
    this.proofs.observe(msg.term, msg.candidate, this.deps.self)
    this.arm(this.randomTimeout())
    const head = this.deps.head()
    this.deps.publish({ type: 'vote', term: msg.term, candidate: msg.candidate, voter: this.deps.self, known: this.deps.votingSet().size, lastVersion: head.version, lastTerm: head.term })
  }

  private onVote (msg: Vote): void {
    this.proofs.observe(msg.term, msg.candidate, msg.voter)
    if (msg.term < this.term) { this.deps.reject('stale-vote'); return }
    const c = this.candidacy
    if (msg.candidate !== this.deps.self || this.role !== 'candidate' || c === null || c.term !== msg.term) return
    const set = this.deps.votingSet()
    if (!set.genesis && !set.members.has(msg.voter)) { this.deps.reject('vote-from-non-member'); return }
    if (c.voters.has(msg.voter)) return
    c.voters.add(msg.voter)
    c.known.push(msg.known)
    c.votes.push(msg)
    this.checkVotes()
  }

  private checkVotes (): void {
    const c = this.candidacy
    const set = this.deps.votingSet()
    if (c === null || this.role !== 'candidate' || !isMajority(set, c.voters, c.known) || !anchored(set, c.voters, this.deps.anchors())) return
    this.candidacy = null
    this.role = 'coordinator'
    this.coordinator = this.deps.self
    const now = this.deps.now()
    this.lastHeartbeatAt = now
    this.lastQuorumAt = now
    this.record(this.term, this.deps.self, 'won')
    this.timers.clearTimeout(this.timer)
    this.deps.onChange()
    // heartbeat first: followers accept this coordinator before its first log entries arrive
    this.sendHeartbeat()
    this.heartbeatTimer = this.timers.setInterval(() => { this.tick() }, this.deps.timing.heartbeatIntervalMs)
    this.deps.onElected(this.term, c.votes)
  }

  private tick (): void {
    if (this.role !== 'coordinator') return
    const now = this.deps.now()
    const heard = new Set<string>([this.deps.self])
    for (const m of this.deps.votingSet().members) if (this.deps.status(m) === 'alive') heard.add(m)
    if (isMajority(this.deps.votingSet(), heard)) this.lastQuorumAt = now
    else if (now - this.lastQuorumAt > this.deps.timing.checkQuorumMs) {
      this.stepDown(this.term)
      return
    }
    this.sendHeartbeat()
  }

  private sendHeartbeat (): void {
    this.deps.publish({ type: 'heartbeat', term: this.term, coordinator: this.deps.self, ...this.deps.heartbeatState() })
  }

  /** Become a follower of `term` (a newer one, or the same after losing quorum). */
  private stepDown (term: number): void {
    const changed = this.role !== 'follower' || term !== this.term || this.coordinator !== null
    if (term > this.term) this.votedFor = null
    this.term = term
    this.role = 'follower'
    this.coordinator = null
    this.candidacy = null
    this.timers.clearInterval(this.heartbeatTimer)
    this.arm(this.randomTimeout())
    if (changed) this.deps.onChange()
  }

  private onHeartbeat (msg: Heartbeat): void {
    const from = msg.coordinator
    if (from === this.deps.self) return
    if (msg.term < this.term) { this.deps.reject('stale-term'); return }
    if (msg.term === this.term && this.coordinator === from) {
      this.lastHeartbeatAt = this.deps.now()
      this.arm(this.randomTimeout())
      this.deps.onHeartbeat(msg)
      return
    }
    if (msg.term === this.term && this.coordinator !== null) { this.deps.reject('not-elected'); return }
    // a follower that timed out in this term still knows whom it followed: without that, a
    // follower cut off from a coordinator that won with other votes could never prove it again
    const last = this.history[this.history.length - 1]
    const followedBefore = last !== undefined && last.term === msg.term && last.coordinator === from
    // a newcomer (term 0, never followed anyone) follows the first claim, as one without state
    // does (proof.ts): one that caught up a member's state before the first heartbeat came
    // could otherwise never prove a coordinator its configuration's members do not all follow
    const newcomer = this.term === 0 && this.history.length === 0
    if (!followedBefore && !newcomer && !this.proofs.proven(msg.term, from, this.deps)) { this.deps.reject('unproven-coordinator'); return }
    if (msg.term > this.term) this.votedFor = null
    this.term = msg.term
    this.role = 'follower'
    this.coordinator = from
    this.candidacy = null
    this.preVote = null
    this.timers.clearInterval(this.heartbeatTimer)
    this.lastHeartbeatAt = this.deps.now()
    this.arm(this.randomTimeout())
    this.record(msg.term, from, 'heartbeat')
    this.deps.onChange()
    this.deps.onHeartbeat(msg)
  }

  private record (term: number, coordinator: string, how: ElectionRecord['how']): void {
    this.history.push({ term, coordinator, how, at: this.deps.now() })
    if (this.history.length > HISTORY_LIMIT) this.history.splice(0, this.history.length - HISTORY_LIMIT)
  }
}
