import { FULL_ANNOUNCE_EVERY, FULL_ANNOUNCES_AT_START } from '../../src/constants.ts'
import { encodeMessage } from '../../src/codec.ts'
import { Election } from '../../src/election.ts'
import { MembershipTable } from '../../src/membership.ts'
import { parseElection } from '../../src/messages/election.ts'
import { parseMembership } from '../../src/messages/membership.ts'
import { parseStateMessage } from '../../src/messages/state.ts'
import { electionSlot, GenesisAnchors, GenesisView, votingSet } from '../../src/quorum.ts'
import { Replication } from '../../src/replication.ts'
import { StateLog } from '../../src/state-log.ts'
import type { Plane } from '../../src/gossip.ts'
import type { StatusChange } from '../../src/membership.ts'
import type { Announce, Profile } from '../../src/messages/membership.ts'
import type { MeshTiming } from '../../src/timing.ts'
import type { Timers } from '../../src/timers.ts'
import type { VirtualClock, Rng } from './clock.ts'

/** What a simulated node needs from the simulated world. */
export interface NodeWorld {
  clock: VirtualClock
  timing: MeshTiming
  /** Gossip `data` on `plane` to whoever the network lets it reach. */
  publish: (from: SimNode, plane: Plane, data: Uint8Array) => void
  /** The node's role, term or coordinator changed (invariant checks). */
  electionChanged: (node: SimNode) => void
  /** A message was rejected (for the trace). */
  rejected: (node: SimNode, reason: string) => void
  /** Something threw inside the node: always a failure of the schedule. */
  fault: (node: SimNode, where: string, err: unknown) => void
}

interface Parts {
  table: MembershipTable
  log: StateLog
  election: Election
  replication: Replication
  announcer: SimAnnouncer
  anchors: GenesisAnchors
  genesisView: GenesisView
  lastRole: string
}

/**
 * One mesh peer in the simulation: the real MembershipTable, StateLog, Election and
 * Replication wired as MeshService wires them (mesh.ts), with the virtual clock's time and
 * timers, and the simulated network in place of gossipsub. `boot()` after `crash()` starts a
 * fresh run with the same peer id and nothing else kept — what a real peer restarted with
 * `--key` keeps (the mesh persists no term, vote or log).
 */
export class SimNode {
  id: string
  name: string
  readonly eligible: boolean
  incarnation = 0
  up = false
  parts: Parts | undefined
  private readonly world: NodeWorld
  /** Peer ids of its bootstrap addresses (none: it is the bootstrap node). */
  private bootstrap: string[]
  private readonly rng: Rng
  private readonly profile: Profile

  constructor (world: NodeWorld, id: string, name: string, bootstrap: string[], rng: Rng, eligible = true) {
    this.world = world
    this.id = id
    this.name = name
    this.bootstrap = bootstrap
    this.rng = rng
    this.eligible = eligible
    this.profile = { addrs: [], role: 'peer', eligible, capabilities: { runtime: { name: 'sim', version: '1' }, backend: { kind: 'cpu' }, memoryBytes: 0 }, layers: [] }
  }

  get p (): Parts {
    if (this.parts === undefined) throw new Error(`${this.name} never booted`)
    return this.parts
  }

  /** Start a run; with `as`, under a new peer id that joins through `as.bootstrap` (a peer restarted without `--key`). */
  boot (as?: { id: string, name: string, bootstrap: string[] }): void {
    if (as !== undefined) { this.id = as.id; this.name = as.name; this.bootstrap = as.bootstrap }
    this.incarnation++
    this.up = true
    const inc = this.incarnation
    const { clock, timing } = this.world
    const timers = clock.timers(() => this.up && this.incarnation === inc)
    const now = (): number => clock.now
    const table = new MembershipTable(this.id, timing)
    const log = new StateLog()
    const voting = (): ReturnType<typeof votingSet> => votingSet(log.config, genesisView.members(table.alive()), this.id, 1)
    const reject = (reason: string): void => { this.world.rejected(this, reason) }
    const anchors = new GenesisAnchors(this.id, this.bootstrap)
    const genesisView = new GenesisView()
    const parts = { table, log, anchors, genesisView, lastRole: 'follower' } as Parts
    this.parts = parts
    parts.election = new Election({
      self: this.id,
      eligible: this.eligible,
      timing,
      now,
      timers,
      random: () => this.rng.next(),
      publish: msg => { this.publish('election', msg) },
      votingSet: voting,
      anchors: () => anchors.get(),
      head: () => ({ version: log.version, term: log.term }),
      status: id => table.status(id),
      announcers: (term, coordinator) => [...table.rawRows()].filter(m => m.status === 'alive' && m.term === term && m.coordinator === coordinator).map(m => m.peerId),
      aliveOthers: () => table.alive().filter(id => id !== this.id).length,
      slot: term => {
        const set = voting()
        const standing = [...table.rawRows()].filter(m => m.status === 'alive' && (m.eligible || m.peerId === this.id) && set.members.has(m.peerId)).map(m => m.peerId)
        return electionSlot(this.id, term, standing, set.genesis ? anchors.get() ?? undefined : undefined)
      },
      reject,
      onChange: () => { this.onElectionChange() },
      onElected: (term, votes) => { parts.replication.onElected(term, votes).catch(err => { this.world.fault(this, 'replication', err) }) },
      onHeartbeat: hb => { parts.replication.onHeartbeat(hb) },
      heartbeatState: () => parts.replication.heartbeatState()
    })
    parts.replication = new Replication({
      self: this.id,
      log,
      timing,
      now,
      timers,
      publish: msg => { this.publish('state', msg) },
      election: () => parts.election,
      votingSet: voting,
      members: () => table.rawRows(),
      status: id => table.status(id),
      deadSince: id => table.deadSince(id),
      reject,
      onStateChange: () => { parts.announcer.soon() }
    })
    parts.announcer = new SimAnnouncer(timers, now, timing, () => table.alive().length, (seq, full) => {
      const e = parts.election
      const a: Announce = { type: 'announce', peerId: this.id, seq, profile: full ? { ...this.profile, ...anchors.profile() } : undefined, load: 0, term: e.term, coordinator: e.coordinator, stateVersion: log.version, stateTerm: log.term }
      this.noteChange(table.announce(a, now()))
      this.publish('membership', a)
    })
    parts.election.start()
    parts.announcer.start()
    timers.setInterval(() => { this.sweep() }, timing.sweepIntervalMs)
  }

  /** Gone without a goodbye: its timers die, in-flight messages to it are lost. */
  crash (): void {
    if (!this.up) return
    this.up = false
    this.p.announcer.stop()
    this.p.election.stop()
    this.p.replication.stop()
  }

  /** A gossip message from `from` arrives (MeshService.validate + onMessage). */
  deliver (plane: Plane, from: string, data: Uint8Array): void {
    if (!this.up) return
    const { table, election, replication } = this.p
    const at = this.world.clock.now
    try {
      if (plane === 'membership') {
        const a = parseMembership(data, from)
        this.noteChange(table.announce(a, at))
        if (a.profile?.anchors !== undefined) this.p.anchors.learn(a.peerId, a.profile.anchors)
        replication.onAnnounce(a.peerId, a.term, a.coordinator, a.stateVersion, a.stateTerm)
        election.noteTerm(a.peerId, a.term)
        return
      }
      const msg = plane === 'election' ? parseElection(data, from) : parseStateMessage(data, from)
      this.noteChange(table.heard(from, at))
      if (plane === 'election') election.handle(msg as Parameters<Election['handle']>[0])
      else replication.handle(msg as Parameters<Replication['handle']>[0])
    } catch (err) {
      this.world.fault(this, plane, err)
    }
  }

  /** A libp2p connection to `peer` opened or closed (a partition's gater, a crash's RST). */
  connected (peer: string, open: boolean): void {
    if (!this.up) return
    this.noteChange(this.p.table.connected(peer, open, this.world.clock.now))
  }

  private publish (plane: Plane, msg: object): void {
    if (this.up) this.world.publish(this, plane, encodeMessage(msg))
  }

  private sweep (): void {
    for (const change of this.p.table.sweep(this.world.clock.now, this.p.announcer.scale())) this.noteChange(change)
  }

  private noteChange (change: StatusChange | undefined): void {
    if (change === undefined) return
    if (change.status === 'alive') this.p.genesisView.note(change.peerId, this.p.log.config.length > 0)
    if (change.status === 'alive' && change.reason === 'joined' && change.peerId !== this.id) this.p.announcer.newMember()
    if (change.status !== 'alive' && change.peerId === this.p.election.coordinator) this.p.election.coordinatorLost()
  }

  private onElectionChange (): void {
    const p = this.p
    if (p.lastRole === 'coordinator' && p.election.role !== 'coordinator') p.replication.onStepDown()
    p.lastRole = p.election.role
    p.announcer.soon()
    this.world.electionChanged(this)
  }
}

/** Announcer's schedule (announcer.ts) on the virtual clock: every period, early after a change, full profile at start, every few and after a newcomer. */
class SimAnnouncer {
  private seq = 0
  private lastAt = 0
  private newMemberSeen = false
  private timer: unknown
  private earlyTimer: unknown
  private running = false
  private readonly timers: Timers
  private readonly now: () => number
  private readonly timing: Pick<MeshTiming, 'announceIntervalMs' | 'announcePerMemberMs' | 'earlyAnnounceMinGapMs'>
  private readonly aliveCount: () => number
  private readonly send: (seq: number, full: boolean) => void

  constructor (timers: Timers, now: () => number, timing: SimAnnouncer['timing'], aliveCount: () => number, send: (seq: number, full: boolean) => void) {
    this.timers = timers
    this.now = now
    this.timing = timing
    this.aliveCount = aliveCount
    this.send = send
  }

  start (): void { this.running = true; this.announce() }
  stop (): void { this.running = false; this.timers.clearTimeout(this.timer); this.timers.clearTimeout(this.earlyTimer) }
  newMember (): void { this.newMemberSeen = true }
  scale (): number { return this.period() / this.timing.announceIntervalMs }

  soon (): void {
    if (!this.running || this.earlyTimer !== undefined) return
    const wait = this.lastAt + this.timing.earlyAnnounceMinGapMs * this.scale() - this.now()
    this.earlyTimer = this.timers.setTimeout(() => { this.earlyTimer = undefined; this.announce() }, Math.max(0, wait))
  }

  private period (): number {
    return Math.max(this.timing.announceIntervalMs, this.aliveCount() * this.timing.announcePerMemberMs)
  }

  private announce (): void {
    if (!this.running) return
    this.timers.clearTimeout(this.timer)
    this.timer = this.timers.setTimeout(() => { this.announce() }, this.period())
    this.lastAt = this.now()
    const seq = ++this.seq
    const full = seq <= FULL_ANNOUNCES_AT_START || seq % FULL_ANNOUNCE_EVERY === 0 || this.newMemberSeen
    this.newMemberSeen = false
    this.send(seq, full)
  }
}
