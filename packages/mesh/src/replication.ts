import { MAX_STATE_BYTES, SNAPSHOT_EVERY } from './constants.ts'
import { NotCoordinatorError, StateTooLargeError } from './errors.ts'
import { majority } from './quorum.ts'
import { compareHeads } from './state-log.ts'
import { platformTimers } from './timers.ts'
import type { Heartbeat, Vote } from './messages/election.ts'
import type { Append, Snapshot, StateMessage, SyncRequest } from './messages/state.ts'
import type { VotingSet } from './quorum.ts'
import type { StateLog } from './state-log.ts'
import type { Timers } from './timers.ts'
import type { Member, MemberStatus, MeshState, Transaction } from './types.ts'

export interface ReplicationTiming { syncTimeoutMs: number, syncRequestMinGapMs: number, removeDeadAfterMs: number }

export interface ReplicationDeps {
  self: string
  log: StateLog
  timing: ReplicationTiming
  now: () => number
  /** @default the platform's timers */
  timers?: Timers
  publish: (msg: StateMessage) => void
  /** The election as it stands. */
  election: () => { role: string, term: number, coordinator: string | null }
  votingSet: () => VotingSet
  members: () => Iterable<Readonly<Member>>
  status: (peerId: string) => MemberStatus | undefined
  deadSince: (peerId: string) => number | undefined
  reject: (reason: string) => void
  /** The local state changed (announce early so the coordinator sees the ack). */
  onStateChange: () => void
}

interface Waiter { version: number, resolve: (v: number) => void, reject: (e: Error) => void }

/**
 * Replication of the coordinator's transaction log. The coordinator appends entries and
 * publishes them; members acknowledge through the state head in their announcements; an
 * entry is committed once a majority of the voting set holds it. A member that falls
 * behind or holds entries of a deposed coordinator asks for a snapshot. A newly elected
 * coordinator first fetches the newest state any live member announced, then records its
 * term, and changes the voting configuration one member at a time, each change only after
 * the previous one (and its own term entry) is committed.
 */
export class Replication {
  ready = false
  commitVersion = 0
  private readonly deps: ReplicationDeps
  private readonly acked = new Map<string, number>()
  private waiters: Waiter[] = []
  private fenceVersion = 0
  private missingSince = new Map<string, number>()
  private pendingSync: { target: string, done: () => void } | null = null
  /** A snapshot asked of a member while there is no coordinator. */
  private catchUp: { target: string, at: number } | null = null
  private behindSince: number | null = null
  private lastSyncRequestAt = 0
  private lastSnapshotAt = 0
  private snapshotTimer: unknown
  private readonly timers: Timers

  constructor (deps: ReplicationDeps) {
    this.deps = deps
    this.timers = deps.timers ?? platformTimers
  }

  stop (): void {
    this.timers.clearTimeout(this.snapshotTimer)
    this.pendingSync?.done()
    this.fail(new NotCoordinatorError('the mesh stopped'))
  }

  private isCoordinatorOf (term: number): boolean {
    const e = this.deps.election()
    return e.role === 'coordinator' && e.term === term
  }

  /** Won `term`: catch up with the newest live state, then record the term. */
  async onElected (term: number, votes: Vote[]): Promise<void> {
    const { log, self } = this.deps
    this.ready = false
    this.acked.clear()
    this.commitVersion = 0
    let best = { term: log.term, version: log.version, peer: self }
    const heads = [...votes.map(v => ({ term: v.lastTerm, version: v.lastVersion, peer: v.voter }))]
    for (const m of this.deps.members()) if (m.status === 'alive') heads.push({ term: m.stateTerm, version: m.stateVersion, peer: m.peerId })
    for (const h of heads) if (compareHeads(h, best) > 0) best = h
    if (best.peer !== self) {
      await new Promise<void>(resolve => {
        const timer = this.timers.setTimeout(() => { done() }, this.deps.timing.syncTimeoutMs)
        const done = (): void => { this.timers.clearTimeout(timer); this.pendingSync = null; resolve() }
        this.pendingSync = { target: best.peer, done }
        this.deps.publish({ type: 'sync', term, peerId: self, target: best.peer, version: log.version, stateTerm: log.term })
      })
    }
    if (!this.isCoordinatorOf(term)) return
    if (log.version === 0 && log.config.length === 0) {
      const members = [...this.deps.members()].filter(m => m.status === 'alive').map(m => m.peerId)
      this.append(term, { op: 'init', members: [...new Set([self, ...members])] })
    }
    this.fenceVersion = this.append(term, { op: 'term', coordinator: self })
    this.ready = true
    this.publishSnapshot(null)
  }

  /** Lost the role: pending proposals fail. */
  onStepDown (): void {
    this.ready = false
    this.pendingSync?.done()
    this.fail(new NotCoordinatorError('this peer is no longer the coordinator'))
  }

  private fail (err: Error): void {
    const waiters = this.waiters
    this.waiters = []
    for (const w of waiters) w.reject(err)
  }

  private append (term: number, tx: Transaction): number {
    const { log } = this.deps
    const entry = { version: log.version + 1, term, tx }
    log.apply(entry)
    this.deps.publish({ type: 'append', term, coordinator: this.deps.self, entries: [entry], commitVersion: this.commitVersion })
    if (entry.version % SNAPSHOT_EVERY === 0) this.publishSnapshot(null)
    this.updateCommit()
    this.deps.onStateChange()
    return entry.version
  }

  /** Append a transaction as coordinator; resolves with its version once committed. */
  async propose (tx: Transaction, options: { signal?: AbortSignal } = {}): Promise<number> {
    const e = this.deps.election()
    if (e.role !== 'coordinator' || !this.ready) throw new NotCoordinatorError(`this peer is ${e.role === 'coordinator' ? 'a coordinator still catching up' : `a ${e.role}`}; the coordinator is ${e.coordinator ?? 'not known'}`)
    options.signal?.throwIfAborted()
    if (tx.op === 'set') {
      const size = JSON.stringify(this.deps.log.current()).length + JSON.stringify(tx.value).length
      if (size > MAX_STATE_BYTES - 4096) throw new StateTooLargeError(`the state would be ~${size} bytes, limit ${MAX_STATE_BYTES - 4096}`)
    }
    const version = this.append(e.term, tx)
    if (version <= this.commitVersion) return version
    return await new Promise<number>((resolve, reject) => {
      const onAbort = (): void => {
        this.waiters = this.waiters.filter(w => w !== waiter)
        reject(options.signal?.reason)
      }
      const waiter: Waiter = {
        version,
        resolve: v => { options.signal?.removeEventListener('abort', onAbort); resolve(v) },
        reject: err => { options.signal?.removeEventListener('abort', onAbort); reject(err) }
      }
      options.signal?.addEventListener('abort', onAbort, { once: true })
      this.waiters.push(waiter)
    })
  }

  /** An announcement: as coordinator, it acknowledges the announcer's state head. */
  onAnnounce (peerId: string, term: number, coordinator: string | null, stateVersion: number, stateTerm: number): void {
    const e = this.deps.election()
    if (e.role === 'coordinator') {
      if (term !== e.term || coordinator !== this.deps.self) return
      // a head counts only if it is on this coordinator's log: a follower still holding a
      // deposed coordinator's longer branch does not hold our entries up to its version
      if (this.deps.log.termAt(stateVersion) === stateTerm) this.acked.set(peerId, stateVersion)
      else this.acked.delete(peerId)
      this.updateCommit()
      return
    }
    // no coordinator to sync from (it died before this peer caught up): fetch the state from
    // a member that holds a newer one, so that this peer can vote with the configuration
    const { log } = this.deps
    if (e.coordinator === null && compareHeads({ term: stateTerm, version: stateVersion }, { term: log.term, version: log.version }) > 0) {
      const now = this.deps.now()
      if (this.catchUp !== null && now - this.catchUp.at < this.deps.timing.syncTimeoutMs) return
      this.catchUp = { target: peerId, at: now }
      this.deps.publish({ type: 'sync', term: e.term, peerId: this.deps.self, target: peerId, version: log.version, stateTerm: log.term })
    }
  }

  private updateCommit (): void {
    const set = this.deps.votingSet()
    const versions = [...set.members].map(m => m === this.deps.self ? this.deps.log.version : this.acked.get(m) ?? 0).sort((a, b) => b - a)
    const need = majority(set.size)
    const committed = versions.length >= need ? versions[need - 1] : 0
    if (committed <= this.commitVersion) return
    // Raft's rule: count replicas only of an entry of the coordinator's own term (its term
    // entry comes first); older entries are committed with it
    if (this.deps.log.termAt(committed) !== this.deps.election().term) return
    const fenced = this.commitVersion < this.fenceVersion && committed >= this.fenceVersion
    this.commitVersion = committed
    const done = this.waiters.filter(w => w.version <= committed)
    this.waiters = this.waiters.filter(w => w.version > committed)
    for (const w of done) w.resolve(w.version)
    // the last configuration change is committed: make the next one without waiting for a tick
    const e = this.deps.election()
    if (fenced && this.ready && e.role === 'coordinator') queueMicrotask(() => { if (this.ready) this.reconcile(this.deps.election().term) })
  }

  /** Fields of the next heartbeat; as coordinator also changes the configuration, one member at a time. */
  heartbeatState (): Pick<Heartbeat, 'stateVersion' | 'stateTerm' | 'commitVersion' | 'ready'> {
    const { log } = this.deps
    const e = this.deps.election()
    if (e.role === 'coordinator' && this.ready) {
      this.updateCommit()
      this.reconcile(e.term)
    }
    return { stateVersion: log.version, stateTerm: log.term, commitVersion: this.commitVersion, ready: this.ready }
  }

  private reconcile (term: number): void {
    if (this.commitVersion < this.fenceVersion) return
    const now = this.deps.now()
    for (const m of this.deps.log.config) {
      if (m === this.deps.self) continue
      const status = this.deps.status(m)
      if (status === undefined && !this.missingSince.has(m)) this.missingSince.set(m, now)
      if (status !== undefined) this.missingSince.delete(m)
      const since = status === 'dead' ? this.deps.deadSince(m) : status === undefined ? this.missingSince.get(m) : undefined
      if (since !== undefined && now - since >= this.deps.timing.removeDeadAfterMs) {
        this.fenceVersion = this.append(term, { op: 'remove', peerId: m, reason: status === 'dead' ? 'dead' : 'never heard' })
        return
      }
    }
    for (const m of this.deps.members()) {
      if (m.status === 'alive' && !this.deps.log.config.includes(m.peerId)) {
        this.fenceVersion = this.append(term, { op: 'add', peerId: m.peerId })
        return
      }
    }
  }

  /** A heartbeat of our coordinator: are we behind, or on a deposed coordinator's branch? */
  onHeartbeat (hb: Heartbeat): void {
    const { log } = this.deps
    const behind = hb.stateVersion > log.version
    const diverged = hb.ready && (hb.stateVersion < log.version || (hb.stateVersion === log.version && hb.stateTerm !== log.term))
    if (!behind && !diverged) { this.behindSince = null; return }
    const now = this.deps.now()
    if (this.behindSince === null) { this.behindSince = now; return }
    if (now - this.behindSince >= this.deps.timing.syncRequestMinGapMs) this.requestSync(hb.term, hb.coordinator)
  }

  private requestSync (term: number, target: string): void {
    const now = this.deps.now()
    if (now - this.lastSyncRequestAt < this.deps.timing.syncRequestMinGapMs) return
    this.lastSyncRequestAt = now
    const { log } = this.deps
    this.deps.publish({ type: 'sync', term, peerId: this.deps.self, target, version: log.version, stateTerm: log.term })
  }

  private publishSnapshot (target: string | null): void {
    this.lastSnapshotAt = this.deps.now()
    this.deps.publish({ type: 'snapshot', term: this.deps.election().term, sender: this.deps.self, target, state: this.deps.log.snapshot() })
  }

  handle (msg: StateMessage): void {
    switch (msg.type) {
      case 'append': this.onAppend(msg); break
      case 'snapshot': this.onSnapshot(msg); break
      case 'sync': this.onSync(msg); break
    }
  }

  private fromCoordinator (term: number, sender: string): boolean {
    const e = this.deps.election()
    if (term < e.term) { this.deps.reject('stale-term'); return false }
    if (term > e.term || e.coordinator === null) return false // not accepted yet: the heartbeat comes
    if (sender !== e.coordinator) { this.deps.reject('not-elected'); return false }
    return sender !== this.deps.self
  }

  private onAppend (msg: Append): void {
    if (!this.fromCoordinator(msg.term, msg.coordinator)) return
    let changed = false
    const { log } = this.deps
    for (const entry of msg.entries) {
      // an append names no previous entry, so only a log whose head is of the entry's term
      // (one coordinator per term) is known to be on the coordinator's branch; any other —
      // a follower still on a deposed coordinator's entries — takes the coordinator's snapshot
      if (entry.version > log.version && entry.term !== log.term) { this.requestSync(msg.term, msg.coordinator); break }
      const result = log.apply(entry)
      if (result === 'applied') changed = true
      if (result === 'conflict' || result === 'gap') { this.requestSync(msg.term, msg.coordinator); break }
    }
    if (changed) this.deps.onStateChange()
  }

  private onSnapshot (msg: Snapshot): void {
    const { log } = this.deps
    const pending = this.pendingSync
    if (pending !== null && msg.target === this.deps.self && msg.sender === pending.target) {
      if (compareHeads(msg.state, { term: log.term, version: log.version }) > 0) this.restore(msg.state)
      pending.done()
      return
    }
    if (msg.target !== null && msg.target !== this.deps.self) return // an answer to someone else's request
    const c = this.catchUp
    // the member asked answers this peer alone, or — a coordinator — everyone at once (a
    // peer that follows a coordinator by then takes its snapshots the usual way, below)
    if (c !== null && (msg.target === this.deps.self || msg.target === null) && msg.sender === c.target && this.deps.election().coordinator === null) {
      this.catchUp = null
      if (compareHeads(msg.state, { term: log.term, version: log.version }) > 0) this.restore(msg.state)
      return
    }
    if (!this.fromCoordinator(msg.term, msg.sender)) {
      if (msg.target === this.deps.self) this.deps.reject('unexpected-snapshot')
      return
    }
    const same = msg.state.version === log.version && msg.state.term === log.term
    // a snapshot overtaken by appends of the same term is on our branch (one coordinator per
    // term), even when our window no longer reaches its version: restoring it would drop
    // entries this peer already acknowledged
    const aheadOnSameBranch = msg.state.version < log.version && (log.termAt(msg.state.version) === msg.state.term || msg.state.term === log.term)
    if (!same && !aheadOnSameBranch) this.restore(msg.state)
  }

  private restore (state: MeshState): void {
    this.deps.log.restore(state)
    this.behindSince = null
    this.deps.onStateChange()
  }

  private onSync (msg: SyncRequest): void {
    if (msg.target !== this.deps.self || msg.peerId === this.deps.self) return
    const e = this.deps.election()
    if (e.role === 'coordinator') {
      // a request of an older term is a member catching up (it follows no one, or cannot
      // prove this coordinator yet): rejecting it left peers that missed this term's
      // election without the state that lets them follow it (simulator seed 1060)
      // coalesce requests of many followers into one snapshot for all
      if (this.snapshotTimer !== undefined) return
      const wait = Math.max(0, this.lastSnapshotAt + this.deps.timing.syncRequestMinGapMs / 2 - this.deps.now())
      this.snapshotTimer = this.timers.setTimeout(() => { this.snapshotTimer = undefined; this.publishSnapshot(null) }, wait)
    } else {
      this.publishSnapshot(msg.peerId) // a new coordinator, or a member without one, catching up from us
    }
  }
}
