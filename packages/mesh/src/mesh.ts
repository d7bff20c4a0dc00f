import { TopicValidatorResult } from '@libp2p/gossipsub'
import type { GossipSub, Message } from '@libp2p/gossipsub'
import type { Libp2pEvents, PeerId, TypedEventTarget } from '@libp2p/interface'
import { encodeMessage } from './codec.ts'
import { DIAL_BACKOFF_MAX_MS, DIAL_BACKOFF_MS, DIAL_TIMEOUT_MS, TARGET_CONNECTIONS, DEFAULT_MESH_ID } from './constants.ts'
import { Announcer } from './announcer.ts'
import { Admission, decodeTicket, InvalidTicketError, isPrivateMeshId, REVOKED_KEY_PREFIX, TICKET_KEY_PREFIX, verifyRevocation, verifyTicket } from './admission.ts'
import type { AdmissionRole, Revocation } from './admission.ts'
import { Counters } from './counters.ts'
import { Discovery } from './discovery.ts'
import { Election } from './election.ts'
import { InvalidMessageError, InvalidTransactionError, MeshNotStartedError } from './errors.ts'
import { PLANES, topicName } from './gossip.ts'
import { MembershipTable } from './membership.ts'
import { parseElection } from './messages/election.ts'
import { parseMembership } from './messages/membership.ts'
import { parseStateMessage, parseTransaction } from './messages/state.ts'
import { electionSlot, GenesisAnchors, GenesisView, votingSet } from './quorum.ts'
import { Replication } from './replication.ts'
import { defaultCapabilities } from './runtime.ts'
import { StateLog } from './state-log.ts'
import { meshTiming } from './timing.ts'
import { meshView } from './view.ts'
import { PEX_PROTOCOL, servePex } from './pex.ts'
import type { DialComponents } from './discovery.ts'
import type { PexComponents } from './pex.ts'
import type { GossipFaultInjector } from './faults.ts'
import type { GossipCounters } from './gossip-counters.ts'
import type { Plane } from './gossip.ts'
import type { StatusChange } from './membership.ts'
import type { Announce } from './messages/membership.ts'
import type { AdmissionRecord } from './messages/state.ts'
import type { MeshTiming } from './timing.ts'
import type { Capabilities, ElectionRecord, ElectionRoleName, LayerRange, Member, MeshRole, MeshState, MeshView, Transaction } from './types.ts'
import type { Mesh, MeshEvents, MeshInit } from './index.ts'

export interface MeshComponents extends DialComponents, PexComponents {
  peerId: PeerId
  events: TypedEventTarget<Libp2pEvents>
  pubsub: GossipSub
  addressManager: { getAddresses: () => Array<{ toString: () => string }> }
}

type Parsed = { plane: Plane, msg: unknown }

const EventTargetBase = EventTarget as unknown as new () => TypedEventTarget<MeshEvents>

/** The mesh as a libp2p service: membership, election and the replicated state over gossipsub. */
export class MeshService extends EventTargetBase implements Mesh {
  readonly peerId: string
  private readonly components: MeshComponents
  private readonly timing: MeshTiming
  readonly meshId: string
  private readonly role: MeshRole
  private readonly eligible: boolean
  private readonly expectedMembers: number
  private capabilities: Capabilities
  private readonly capabilitiesProbe?: () => Promise<Capabilities>
  private layers: LayerRange[]
  private load = 0
  private readonly counters = new Counters()
  private readonly gossip?: GossipCounters
  private readonly table: MembershipTable
  private readonly log = new StateLog()
  private readonly election: Election
  private readonly replication: Replication
  private readonly discovery: Discovery
  private readonly topics: Map<string, Plane>
  private readonly parsed = new WeakMap<Message, Parsed>()
  private readonly faults?: GossipFaultInjector
  private readonly announcer: Announcer
  private readonly genesisAnchors: GenesisAnchors
  private readonly genesisView = new GenesisView()
  private intervals: Array<ReturnType<typeof setInterval>> = []
  private started = false
  private lastRole: ElectionRoleName = 'follower'
  /** Private meshes only: who holds a valid ticket (undefined: open mesh, everyone is admitted). */
  private readonly admission?: Admission
  private ticket?: string

  constructor (components: MeshComponents, init: MeshInit = {}) {
    super()
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the election's `eligible` getter reads this peer's admission
    const service = this
    this.components = components
    this.peerId = components.peerId.toString()
    this.timing = meshTiming(init.timing)
    this.meshId = init.meshId ?? DEFAULT_MESH_ID
    this.role = init.role ?? 'peer'
    this.eligible = init.eligible ?? true
    this.expectedMembers = init.expectedMembers ?? 1
    this.capabilities = typeof init.capabilities === 'object' ? init.capabilities : defaultCapabilities()
    if (typeof init.capabilities === 'function') this.capabilitiesProbe = init.capabilities
    this.layers = init.layers ?? []
    this.gossip = init.gossipCounters
    this.faults = init.faults
    this.gossip?.setRejectionSink(reason => { this.counters.inc(reason) })
    this.topics = new Map(PLANES.map(p => [topicName(this.meshId, p), p]))
    this.admission = isPrivateMeshId(this.meshId) ? new Admission(this.meshId) : undefined
    this.ticket = init.ticket
    this.table = new MembershipTable(this.peerId, this.timing)
    const now = (): number => Date.now()
    const reject = (reason: string): void => { this.counters.inc(reason) }
    const admitted = (id: string): boolean => this.admitted(id)
    const voting = (): ReturnType<typeof votingSet> => votingSet(this.log.config, [...this.genesisView.members(this.table.alive())].filter(admitted), this.peerId, this.expectedMembers)
    this.genesisAnchors = new GenesisAnchors(this.peerId, bootstrapIds(init.bootstrap ?? []))
    const anchors = (): ReadonlySet<string> | null => this.genesisAnchors.get()
    this.election = new Election({
      self: this.peerId,
      // in a private mesh a peer without a valid ticket never stands (and the others ignore it)
      get eligible () { return service.eligible && service.admitted(service.peerId) },
      timing: this.timing,
      now,
      publish: msg => { this.publish('election', msg) },
      votingSet: voting,
      anchors,
      head: () => ({ version: this.log.version, term: this.log.term }),
      status: id => this.table.status(id),
      announcers: (term, coordinator) => [...this.table.rawRows()].filter(m => m.status === 'alive' && m.term === term && m.coordinator === coordinator && admitted(m.peerId)).map(m => m.peerId),
      aliveOthers: () => this.table.alive().filter(id => id !== this.peerId).length,
      slot: term => {
        const set = voting()
        const standing = [...this.table.rawRows()].filter(m => m.status === 'alive' && (m.eligible || m.peerId === this.peerId) && set.members.has(m.peerId) && admitted(m.peerId)).map(m => m.peerId)
        // the first election needs the anchors' votes anyway: let them stand first
        return electionSlot(this.peerId, term, standing, set.genesis ? anchors() ?? undefined : undefined)
      },
      reject,
      onChange: () => { this.onElectionChange() },
      onElected: (term, votes) => { this.replication.onElected(term, votes).catch(err => { this.fault('replication', err) }) },
      onHeartbeat: hb => { this.replication.onHeartbeat(hb) },
      heartbeatState: () => this.replication.heartbeatState()
    })
    this.replication = new Replication({
      self: this.peerId,
      log: this.log,
      timing: this.timing,
      now,
      publish: msg => { this.publish('state', msg) },
      election: () => this.election,
      votingSet: voting,
      members: () => [...this.table.rawRows()].filter(m => admitted(m.peerId)),
      // a revoked member counts as gone: the coordinator removes it from the configuration
      status: id => admitted(id) ? this.table.status(id) : undefined,
      deadSince: id => this.table.deadSince(id),
      reject,
      onStateChange: () => {
        this.syncAdmission()
        this.announcer.soon()
        this.dispatchEvent(new CustomEvent('state', { detail: { version: this.log.version, term: this.log.term } }))
      }
    })
    this.announcer = new Announcer({
      self: this.peerId,
      timing: this.timing,
      aliveCount: () => this.table.alive().length,
      profile: () => ({ addrs: this.components.addressManager.getAddresses().map(String).slice(0, 16), role: this.role, eligible: this.eligible, capabilities: this.capabilities, layers: this.layers, ...(this.ticket === undefined ? {} : { ticket: this.ticket }), ...this.genesisAnchors.profile() }),
      view: () => ({ load: this.load, term: this.election.term, coordinator: this.election.coordinator, stateVersion: this.log.version, stateTerm: this.log.term }),
      send: (a, at) => {
        this.noteChange(this.table.announce(a, at))
        this.publish('membership', a)
      }
    })
    this.discovery = new Discovery(components, {
      self: this.peerId,
      targetConnections: init.targetConnections ?? TARGET_CONNECTIONS,
      bootstrap: init.bootstrap ?? [],
      dialTimeoutMs: DIAL_TIMEOUT_MS,
      backoffMs: DIAL_BACKOFF_MS,
      backoffMaxMs: DIAL_BACKOFF_MAX_MS,
      now,
      onDialError: () => { this.counters.inc('dial-failed') },
      onPexError: () => { this.counters.inc('pex-failed') }
    })
  }

  readonly [Symbol.toStringTag] = '@shardmesh/mesh'

  async start (): Promise<void> {
    if (this.capabilitiesProbe !== undefined) this.capabilities = await this.capabilitiesProbe()
    // a ticket given at start must hold (a peer started without one runs unadmitted until the state brings one)
    if (this.admission !== undefined && this.ticket !== undefined) await this.admission.present(this.peerId, this.ticket)
    if (this.admission === undefined && this.ticket !== undefined) throw new InvalidTicketError('not-private', `a ticket was given, but mesh "${this.meshId}" is open`)
    await servePex(this.components, requester => [...this.table.rawRows()]
      .filter(m => m.status === 'alive' && m.peerId !== requester && m.addrs.length > 0)
      .map(m => ({ peerId: m.peerId, addrs: m.addrs })))
  }

  afterStart (): void {
    const { pubsub, events } = this.components
    for (const [topic, plane] of this.topics) {
      pubsub.topicValidators.set(topic, async (_peer, msg) => await this.validate(plane, msg))
      pubsub.subscribe(topic)
    }
    pubsub.addEventListener('message', this.onMessage)
    events.addEventListener('peer:connect', this.onConnect)
    events.addEventListener('peer:disconnect', this.onDisconnect)
    this.started = true
    this.election.start()
    this.announcer.start()
    this.discovery.topUp(this.table.rawRows())
    this.intervals = [
      setInterval(() => { this.sweep() }, this.timing.sweepIntervalMs),
      setInterval(() => { this.discovery.topUp(this.table.rawRows()) }, this.timing.discoveryIntervalMs)
    ]
  }

  /** Everything is torn down in beforeStop, while gossipsub still runs. */
  stop (): void {}

  beforeStop (): void {
    if (!this.started) return
    this.started = false
    for (const i of this.intervals) clearInterval(i)
    this.announcer.stop()
    this.election.stop()
    this.replication.stop()
    this.discovery.stop()
    const { pubsub, events } = this.components
    pubsub.removeEventListener('message', this.onMessage)
    events.removeEventListener('peer:connect', this.onConnect)
    events.removeEventListener('peer:disconnect', this.onDisconnect)
    for (const topic of this.topics.keys()) pubsub.topicValidators.delete(topic)
    void this.components.registrar.unhandle(PEX_PROTOCOL).catch(() => {})
  }

  // --- gossip in and out ---

  private async validate (plane: Plane, msg: Message): Promise<TopicValidatorResult> {
    if (msg.type !== 'signed') { this.counters.inc('unsigned'); return TopicValidatorResult.Reject }
    const from = msg.from.toString()
    const fault = this.faults?.action(plane, from)
    if (fault?.drop === true) { this.counters.inc('fault-dropped'); return TopicValidatorResult.Ignore }
    if (fault !== undefined && fault.delayMs > 0) await new Promise(resolve => setTimeout(resolve, fault.delayMs))
    try {
      const parsed = plane === 'membership' ? parseMembership(msg.data, from) : plane === 'election' ? parseElection(msg.data, from) : parseStateMessage(msg.data, from)
      if (this.admission !== undefined) await this.checkAdmission(from, parsed)
      this.parsed.set(msg, { plane, msg: parsed })
      return TopicValidatorResult.Accept
    } catch (err) {
      this.counters.inc(err instanceof InvalidMessageError ? err.reason : err instanceof InvalidTicketError ? `ticket-${err.reason}` : 'malformed')
      return TopicValidatorResult.Reject
    }
  }

  private readonly onMessage = (evt: CustomEvent<Message>): void => {
    const msg = evt.detail
    const parsed = this.parsed.get(msg)
    if (parsed === undefined || msg.type !== 'signed' || !this.started) return
    const from = msg.from.toString()
    try {
      if (parsed.plane === 'membership') {
        const a = parsed.msg as Announce
        this.noteChange(this.table.announce(a, Date.now()))
        if (!this.admitted(a.peerId)) return
        if (a.profile?.anchors !== undefined) this.genesisAnchors.learn(a.peerId, a.profile.anchors)
        this.replication.onAnnounce(a.peerId, a.term, a.coordinator, a.stateVersion, a.stateTerm)
        this.election.noteTerm(a.peerId, a.term)
        return
      }
      this.noteChange(this.table.heard(from, Date.now()))
      // private mesh: an unadmitted peer neither votes, stands, heartbeats nor writes state; it may
      // ask for the state (a follower that is admitted later takes its ticket from there)
      if (!this.admitted(from) && (parsed.msg as { type: string }).type !== 'sync') { this.counters.inc('unadmitted'); return }
      if (parsed.plane === 'state' && (parsed.msg as { type: string }).type === 'admission') { this.onAdmissionRecord(parsed.msg as AdmissionRecord); return }
      if (parsed.plane === 'election') this.election.handle(parsed.msg as Parameters<Election['handle']>[0])
      else this.replication.handle(parsed.msg as Parameters<Replication['handle']>[0])
    } catch (err) {
      this.fault(parsed.plane, err)
    }
  }

  private publish (plane: Plane, msg: object): void {
    if (!this.started) return
    this.components.pubsub.publish(topicName(this.meshId, plane), encodeMessage(msg)).catch(() => { this.counters.inc('publish-failed') })
  }

  private fault (where: string, err: unknown): void {
    this.counters.inc(`internal-error-${where}`)
    this.dispatchEvent(new CustomEvent('error', { detail: err instanceof Error ? err : new Error(String(err)) }))
  }

  // --- membership ---

  private sweep (): void {
    for (const change of this.table.sweep(Date.now(), this.announcer.scale())) this.noteChange(change)
  }

  private noteChange (change: StatusChange | undefined): void {
    if (change === undefined) return
    if (change.status === 'alive') this.genesisView.note(change.peerId, this.log.config.length > 0)
    if (change.status === 'alive' && change.reason === 'joined' && change.peerId !== this.peerId) {
      // tell the newcomer who we are with our next (regular) announcement, and maybe connect to it
      if (this.components.connectionManager.getConnections().some(c => c.remotePeer.toString() === change.peerId)) this.table.connected(change.peerId, true, change.at)
      this.announcer.newMember()
      this.discovery.topUp(this.table.rawRows())
    }
    if (change.status !== 'alive' && change.peerId === this.election.coordinator) this.election.coordinatorLost()
    this.dispatchEvent(new CustomEvent('member', { detail: change }))
  }

  private readonly onConnect = (evt: CustomEvent<PeerId>): void => {
    this.noteChange(this.table.connected(evt.detail.toString(), true, Date.now()))
  }

  private readonly onDisconnect = (evt: CustomEvent<PeerId>): void => {
    this.noteChange(this.table.connected(evt.detail.toString(), false, Date.now()))
  }

  private onElectionChange (): void {
    const { role, term, coordinator } = this.election
    if (this.lastRole === 'coordinator' && role !== 'coordinator') this.replication.onStepDown()
    this.lastRole = role
    this.announcer.soon()
    this.dispatchEvent(new CustomEvent('coordinator', { detail: { coordinator, term, role } }))
  }

  // --- public API ---

  coordinator (): { peerId: string | null, term: number, role: ElectionRoleName } {
    return { peerId: this.election.coordinator, term: this.election.term, role: this.election.role }
  }

  /** Every member; in a private mesh only the admitted ones (`view()` lists all). */
  members (): Member[] { return this.admission === undefined ? this.table.list() : this.table.list().filter(m => this.admitted(m.peerId)) }
  member (peerId: string): Member | undefined { return this.table.get(peerId) }
  state (): Readonly<MeshState> { return this.log.current() }
  commitVersion (): number { return this.replication.commitVersion }
  history (): ElectionRecord[] { return [...this.election.history] }
  rejections (): Record<string, number> { return this.counters.toJSON() }

  traffic (): { sentBytes: number, recvBytes: number, sentRpcs: number, recvRpcs: number } {
    const g = this.gossip
    return { sentBytes: g?.sentBytes ?? 0, recvBytes: g?.recvBytes ?? 0, sentRpcs: g?.sentRpcs ?? 0, recvRpcs: g?.recvRpcs ?? 0 }
  }

  view (): MeshView { return meshView(this.coordinator(), this.log.version, this.table.list(), Date.now(), this.components.connectionManager.getConnections()) }

  async propose (tx: Transaction, options: { signal?: AbortSignal } = {}): Promise<number> {
    if (!this.started) throw new MeshNotStartedError('the mesh is not started')
    let checked: Transaction
    try {
      checked = parseTransaction(tx)
    } catch (err) {
      throw new InvalidTransactionError((err as Error).message)
    }
    if (checked.op !== 'set' && checked.op !== 'delete') throw new InvalidTransactionError(`"${checked.op}" transactions are written by the coordinator itself`)
    return await this.replication.propose(checked, options)
  }

  // --- private meshes (admission.ts) ---

  /** In a private mesh: does `peerId` hold a valid ticket (with `role`)? Always true in an open mesh. */
  admitted (peerId: string, role?: AdmissionRole): boolean {
    return this.admission === undefined || this.admission.admitted(peerId, role)
  }

  isPrivate (): boolean { return this.admission !== undefined }

  /**
   * Put an operator-signed ticket or revocation into the replicated state: proposed here as
   * coordinator, else relayed to the coordinator (again every heartbeat interval) until this
   * peer's copy of the state holds it.
   */
  async publishAdmission (record: { ticket: string } | { revocation: Revocation }, options: { signal?: AbortSignal } = {}): Promise<void> {
    if (!this.started) throw new MeshNotStartedError('the mesh is not started')
    if (this.admission === undefined) throw new InvalidTicketError('not-private', `mesh "${this.meshId}" is open: it has no tickets`)
    const { key, value } = 'ticket' in record
      ? { key: `${TICKET_KEY_PREFIX}${(await verifyTicket(record.ticket, { meshId: this.meshId })).peer}`, value: record.ticket }
      : { key: `${REVOKED_KEY_PREFIX}${(await verifyRevocation(record.revocation, this.meshId)).peer}`, value: record.revocation }
    const held = (): boolean => JSON.stringify(this.log.current().data[key]) === JSON.stringify(value)
    while (!held()) {
      options.signal?.throwIfAborted()
      if (!this.started) throw new MeshNotStartedError('the mesh stopped')
      if (this.election.role === 'coordinator') {
        await this.replication.propose({ op: 'set', key, value }, options).catch(() => {})
      } else {
        this.publish('state', { type: 'admission', term: this.election.term, peerId: this.peerId, ...record })
      }
      await new Promise(resolve => setTimeout(resolve, this.timing.heartbeatIntervalMs))
    }
  }

  /** Verify the ticket a member presents and an admission record's signature before the message is accepted. */
  private async checkAdmission (from: string, parsed: unknown): Promise<void> {
    const m = parsed as { type: string, profile?: { ticket?: string }, ticket?: string, revocation?: unknown }
    if (m.type === 'announce' && m.profile?.ticket !== undefined) {
      const ticket = m.profile.ticket
      delete m.profile.ticket // the table keeps no tickets; Admission does
      // a bad ticket does not hide the member (it shows, unadmitted): counted, not rejected
      await this.admission!.present(from, ticket).catch(err => {
        if (!(err instanceof InvalidTicketError)) throw err
        this.counters.inc(`ticket-${err.reason}`)
      })
    } else if (m.type === 'admission') {
      if (m.ticket !== undefined) await verifyTicket(m.ticket, { meshId: this.meshId })
      else await verifyRevocation(m.revocation, this.meshId)
    }
  }

  /** As coordinator: put a relayed (already verified) record into the state. */
  private onAdmissionRecord (r: AdmissionRecord): void {
    if (this.election.role !== 'coordinator') return
    const peer = r.ticket !== undefined ? decodeTicket(r.ticket).peer : String(r.revocation?.peer)
    const key = r.ticket !== undefined ? `${TICKET_KEY_PREFIX}${peer}` : `${REVOKED_KEY_PREFIX}${peer}`
    const value = r.ticket ?? r.revocation
    if (JSON.stringify(this.log.current().data[key]) === JSON.stringify(value)) return
    this.replication.propose({ op: 'set', key, value }).catch(() => { this.counters.inc('admission-propose-failed') })
  }

  /** The state moved: read its tickets and revocations; take a ticket the operator published for this peer. */
  private syncAdmission (): void {
    const a = this.admission
    if (a === undefined) return
    const data = this.log.current().data
    a.syncState(data).then(refused => {
      if (refused > 0) this.counters.inc('ticket-refused-in-state')
      const mine = a.token(this.peerId)
      if (mine !== undefined && mine !== this.ticket) { this.ticket = mine; this.announcer.soon() }
    }, err => { this.fault('admission', err) })
  }

  setLayers (layers: LayerRange[]): void { this.layers = layers; this.announcer.soon() }
  setLoad (load: number): void { this.load = load }
  setCapabilities (capabilities: Capabilities): void { this.capabilities = capabilities; this.announcer.soon() }
}

/** Peer ids of the bootstrap addresses (`…/p2p/<id>`). */
function bootstrapIds (bootstrap: string[]): string[] {
  return bootstrap.map(a => /\/p2p\/([^/]+)$/.exec(a)?.[1]).filter((id): id is string => id !== undefined)
}

/** The mesh as a libp2p service: `services: { pubsub: gossipsub(gossipOptions(…)), mesh: mesh(init) }`. */
export function mesh (init: MeshInit = {}): (components: MeshComponents) => Mesh {
  return components => new MeshService(components, init)
}
