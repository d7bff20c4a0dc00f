import { activationPayload, encodeControl, encodeFrame, frameActivations, frameTokens, tokenPayload } from '@shardmesh/protocol'
import { nextTask } from '@shardmesh/engine'
import type { ActivationDType, Backend, BatchItem, DecoderSession, Stage, StageSession, TensorSource } from '@shardmesh/engine'
import type { ModelConfig } from '@shardmesh/model'
import type { ControlMessage, Frame, PeerRef, RouteHop } from '@shardmesh/protocol'
import type { Endpoint, Inbound } from './endpoint.ts'
import { ACTIVE_WINDOW_MS, BATCH_WAIT, MAX_SESSIONS_PER_UPSTREAM, MIRROR_CATCH_UP_MS, SESSION_IDLE_TTL_MS } from './constants.ts'
import { NotStartedError } from './errors.ts'
import { OutputLog } from './output-log.ts'
import { PeerLimits } from './peer-limits.ts'
import type { PeerLimitsInit } from './peer-limits.ts'
import { sessionBytes, sessionHex } from './session-id.ts'
import { spanKey, spanOf, spanOfUnits, spanText, stageKey } from './span.ts'
import type { Span } from './span.ts'

/** Where a stage's weights come from: a checkpoint's tensors, or (weights package) fetched parts. */
export type TensorLoader = TensorSource | ((layers: [number, number], options: { signal?: AbortSignal }) => Promise<TensorSource>)

export interface StageServerInit {
  endpoint: Endpoint
  backend: Backend
  config: ModelConfig
  tensors: TensorLoader
  /** Dtype of activations sent downstream (F16 halves the bytes, rounding). @default 'F32' */
  activations?: ActivationDType
  /** A session with no frame for this long is dropped. @default SESSION_IDLE_TTL_MS */
  idleTtlMs?: number
  /** Open sessions one upstream peer may hold here for one head. @default MAX_SESSIONS_PER_UPSTREAM */
  maxSessionsPerUpstream?: number
  /** Message rate and bytes in flight per remote peer (see `PeerLimits`). */
  limits?: PeerLimitsInit
  /**
   * The encoder memory a head handed this peer for a decoder session (a model of several parts;
   * ComponentEndpoint `memory`): with `crossAttention`, an `open` without one is refused
   * (`NO_MEMORY`). @default none
   */
  memory?: (session: string) => { data: Float32Array, n: number } | undefined
  /** An encoder–decoder's decoder: every stage cross-attends to an encoder memory of this width (StageInit.crossAttention). @default none */
  crossAttention?: { dim: number }
  /** Private meshes: may `peerId` act as `role`? An `open` from an unadmitted upstream or for an unadmitted head is refused (`NOT_ADMITTED`). @default everyone */
  admitted?: (peerId: string, role: 'compute' | 'head') => boolean
}

type Open = Extract<ControlMessage, { type: 'open' }>
type Reroute = Extract<ControlMessage, { type: 'reroute' }>

interface ServedSession {
  id: Uint8Array
  hex: string
  /** The peer whose frames this session takes (the previous hop, or the head at hop 0). */
  upstream: string
  route: RouteHop[]
  hop: number
  head: PeerRef
  sampling: Open['sampling']
  stage: Stage
  session: StageSession
  log: OutputLog
  /** Frames received and not yet computed, in order. */
  queue: Frame[]
  /** Payload bytes of `queue`, held against the upstream's bytes in flight. */
  queuedBytes: number
  /** A `close` arrived: close once the queue is empty. */
  closing: boolean
  failed: boolean
  /** Frames of earlier steps are stale (sent before a recovery) and refused. */
  minStep: number
  /** Replayed frames are passed on while `hop < replayTo` (the hops after are being rebuilt too). */
  replayTo: number
  /** A reroute waiting for the session to finish its pass and hold the positions before the resume point. */
  pendingReroute?: { msg: Reroute, from: string, until: number }
  /** A mirror of `route[hop]` (warm standby): computes and logs, sends nothing, until a reroute promotes it. */
  shadow: boolean
  lastActive: number
}

export interface StageServerStats {
  sessions: number
  /** Session steps computed (replayed positions included). */
  forwards: number
  /** Passes through the stage (a pass computes one step of each session in its batch). */
  batches: number
  failedSessions: number
  /** Sessions rerouted by their head after a failure elsewhere on the route. */
  reroutes: number
  /** Output-log entries replayed into a replacement downstream. */
  replayed: number
  /** Sessions dropped after `idleTtlMs` without a frame. */
  expired: number
  /** Payload bytes of frames received and not yet computed (all peers). */
  bytesInFlight: number
  /** Remote peers whose message rate or bytes in flight are being tracked. */
  trackedPeers: number
}

/** Control messages a stage server takes (the others are answers for a driver on the same endpoint). */
const STAGE_CONTROLS = new Set<ControlMessage['type']>(['open', 'close', 'reroute', 'prepare', 'digest'])

/**
 * Serves layer ranges (a primary's, a warm standby's, one taken over in a recovery): per
 * session a KV cache and an output log of what it sent downstream, activations to the next
 * stage's peer over a stream kept open, and (last stage) the sampled token to the head.
 * Frames of different sessions waiting together run as one batch per range
 * (`Stage.forwardBatch`), each session's frames in order. A bad input fails only its own
 * session (the head hears why); others go on. A head may reroute a session after a failure
 * elsewhere on its route: the stage rewinds it and, when the next hop was replaced, replays
 * its output log into the replacement.
 */
export class StageServer {
  private readonly init: StageServerInit
  private readonly stages = new Map<string, Stage>()
  private readonly loading = new Map<string, Promise<Stage>>()
  private readonly sessions = new Map<string, ServedSession>()
  private readonly limits: PeerLimits
  private unlisten: (() => void) | undefined
  private counts = { forwards: 0, batches: 0, failedSessions: 0, reroutes: 0, replayed: 0, expired: 0 }
  /** The batch loop while it runs (one at a time). */
  private running: Promise<void> | undefined
  /** Sessions in the batch being computed. */
  private computing = new Set<ServedSession>()
  /** Sessions with waiting frames, in the order their oldest frame arrived. */
  private readonly ready: ServedSession[] = []
  private lastPassMs = 0
  /** Wakes `awaitFrames` when a session gets a waiting frame. */
  private arrival: (() => void) | undefined
  private sweeper: ReturnType<typeof setInterval> | undefined
  private unlistenLost: (() => void) | undefined

  constructor (init: StageServerInit) {
    this.init = init
    this.limits = new PeerLimits(init.limits)
  }

  /** The first range served, once `serve()` resolved. */
  get layers (): [number, number] | undefined { return this.ranges()[0] }

  /** Every range served. */
  ranges (): Array<[number, number]> { return [...this.stages.values()].map(s => s.layers) }

  stats (): StageServerStats { return { sessions: this.sessions.size, ...this.counts, bytesInFlight: this.limits.bytesInFlight(), trackedPeers: this.limits.size } }

  /** Payload bytes of frames from `peer` received and not yet computed. */
  bytesInFlight (peer: string): number { return this.limits.bytesInFlight(peer) }

  /** Ids of the sessions open here. */
  sessionIds (): string[] { return [...this.sessions.keys()] }

  async start (): Promise<void> {
    await this.init.endpoint.start()
    this.unlisten ??= this.init.endpoint.onMessage(msg => { this.receive(msg) })
    // a frame written just before the next hop died may never fail: tell the heads at once
    this.unlistenLost ??= this.init.endpoint.onPeerLost(peer => {
      for (const s of this.sessions.values()) {
        if (s.route[s.hop + 1]?.peerId === peer) this.failSession(s, 'UNREACHABLE', `the connection to the next hop ${peer} closed`, peer)
      }
    })
    const ttl = this.init.idleTtlMs ?? SESSION_IDLE_TTL_MS
    this.sweeper ??= setInterval(() => { this.expire(ttl); this.limits.sweep() }, Math.max(50, Math.min(ttl / 4, 10_000)))
  }

  /** Every span served (layers, and units where a stage runs part of a block). */
  spans (): Span[] { return [...this.stages.values()].map(s => spanOfUnits(s.units)) }

  /**
   * Load `layers` — or with `units`, those units (strategy attention_feedforward) — and serve
   * them beside any range served already (sessions of those go on).
   */
  async serve (layers: [number, number], options: { signal?: AbortSignal, units?: [number, number] } = {}): Promise<void> {
    if (this.unlisten === undefined) throw new NotStartedError('start the stage server before serving a range')
    const units = options.units
    const key = spanKey({ layers, units })
    if (this.stages.has(key)) return
    let pending = this.loading.get(key)
    if (pending === undefined) {
      const { tensors, backend, config } = this.init
      pending = (async () => {
        const source = typeof tensors === 'function' ? await tensors(layers, options) : tensors
        return await backend.createStage({ config, layers, ...(units === undefined ? {} : { units }), ...(this.init.crossAttention === undefined ? {} : { crossAttention: this.init.crossAttention }), tensors: source, activations: this.init.activations })
      })()
      this.loading.set(key, pending)
    }
    try {
      const stage = await pending
      if (this.unlisten === undefined) { await stage.close(); throw new NotStartedError('the stage server stopped while loading') }
      this.stages.set(key, stage)
    } finally {
      this.loading.delete(key)
    }
  }

  /** Stop serving every range (a layer range, or a span) not in `keep` that has no open session (those go when their sessions end). */
  async retain (keep: Array<[number, number] | Span>): Promise<void> {
    const wanted = new Set(keep.map(k => spanKey(Array.isArray(k) ? { layers: k } : k)))
    const inUse = new Set([...this.sessions.values()].map(s => stageKey(s.stage)))
    for (const [key, stage] of this.stages) {
      if (wanted.has(key) || inUse.has(key)) continue
      this.stages.delete(key)
      await stage.close()
    }
  }

  async stop (): Promise<void> {
    this.unlisten?.()
    this.unlisten = undefined
    this.unlistenLost?.()
    this.unlistenLost = undefined
    clearInterval(this.sweeper)
    this.sweeper = undefined
    const all = [...this.sessions.values()]
    this.sessions.clear()
    this.ready.length = 0
    await this.running
    for (const s of all) s.session.close()
    for (const stage of this.stages.values()) await stage.close()
    this.stages.clear()
  }

  private expire (ttl: number): void {
    const now = performance.now()
    for (const s of this.sessions.values()) {
      if (now - s.lastActive < ttl || this.computing.has(s)) continue
      this.counts.expired++
      this.drop(s)
    }
  }

  private drop (s: ServedSession): void {
    if (this.sessions.get(s.hex) !== s) return
    this.sessions.delete(s.hex)
    this.clearQueue(s)
    s.session.close()
  }

  /** Forget a session's waiting frames (their bytes no longer count against its upstream). */
  private clearQueue (s: ServedSession): void {
    s.queue.length = 0
    this.limits.release(s.upstream, s.queuedBytes)
    s.queuedBytes = 0
  }

  private dequeue (s: ServedSession): Frame | undefined {
    const frame = s.queue.shift()
    if (frame !== undefined) {
      s.queuedBytes -= frame.payload.byteLength
      this.limits.release(s.upstream, frame.payload.byteLength)
    }
    return frame
  }

  /**
   * Charge a message to its sender's rate: over it, the message is refused (`RATE_LIMITED`) and
   * the session it names, when the sender drives it here, fails so its head hears why.
   */
  private admit (msg: Inbound): boolean {
    if (this.limits.admit(msg.from)) return true
    const { endpoint } = this.init
    const { messagesPerSecond, messageBurst } = this.limits.limits
    const why = `${msg.from} sent more than ${messagesPerSecond} messages/s (burst ${messageBurst}) to ${endpoint.peerId}`
    const hex = 'control' in msg ? msg.control.session : sessionHex(msg.frame.session)
    const s = this.sessions.get(hex)
    if (s !== undefined && s.upstream === msg.from && !s.failed) {
      this.failSession(s, 'RATE_LIMITED', why)
      this.clearQueue(s)
      return false
    }
    if ('control' in msg && msg.control.type === 'open') this.refuse(msg.control.head, hex, 'RATE_LIMITED', why, msg.from)
    else endpoint.reject('RATE_LIMITED')
    return false
  }

  private receive (msg: Inbound): void {
    const { endpoint } = this.init
    if ('control' in msg) {
      const c = msg.control
      if (!STAGE_CONTROLS.has(c.type)) return // for the driver on this endpoint
      if (!this.admit(msg)) return
      if (c.type === 'open') this.open(c, msg.from)
      else if (c.type === 'close') this.close(c.session, msg.from)
      else if (c.type === 'reroute') this.reroute(c, msg.from)
      else if (c.type === 'prepare') void this.prepare(c, msg.from)
      else if (c.type === 'digest') void this.digest(c, msg.from)
      return
    }
    if (msg.frame.kind === 'sampled') return // for the driver on this endpoint
    if (!this.admit(msg)) return
    const s = this.sessions.get(sessionHex(msg.frame.session))
    if (s === undefined) { endpoint.reject('UNKNOWN_SESSION'); return }
    if (s.upstream !== msg.from) { endpoint.reject('WRONG_SENDER'); return }
    if (msg.frame.step < s.minStep && msg.frame.replay !== true) { endpoint.reject('STALE'); return }
    if (s.failed) return
    const bytes = msg.frame.payload.byteLength
    if (!this.limits.reserve(msg.from, bytes)) {
      this.failSession(s, 'BYTES_IN_FLIGHT', `${msg.from} has ${this.limits.bytesInFlight(msg.from)} bytes of frames waiting on ${endpoint.peerId}; ${bytes} more would pass ${this.limits.limits.maxBytesInFlight}`)
      this.clearQueue(s)
      return
    }
    s.lastActive = performance.now()
    s.queuedBytes += bytes
    s.queue.push(msg.frame)
    this.markReady(s)
  }

  private markReady (s: ServedSession): void {
    if (s.queue.length === 1 && !this.computing.has(s) && !this.ready.includes(s)) {
      this.ready.push(s)
      this.arrival?.()
    }
    this.running ??= this.drain().finally(() => { this.running = undefined })
  }

  /** Count a refusal and tell the head, unless `cause` (the sender) has had its answers for now. */
  private refuse (head: PeerRef, session: string, code: string, message: string, cause: string): void {
    const { endpoint } = this.init
    endpoint.reject(code)
    if (!this.limits.mayReply(cause)) { endpoint.reject('UNANSWERED'); return }
    void endpoint.send(head, encodeControl({ type: 'error', session, code, message })).catch(() => {})
  }

  private open (c: Open, from: string): void {
    const { endpoint, config } = this.init
    const hop = c.route[c.hop]
    const stage = this.stages.get(spanKey(hop))
    const fail = (code: string, message: string): void => { this.refuse(c.head, c.session, code, message, from) }
    if (this.stages.size === 0) { fail('NOT_SERVING', `${endpoint.peerId} serves no layers`); return }
    const { admitted } = this.init
    if (admitted !== undefined && (!admitted(c.head.peerId, 'head') || !admitted(from, c.hop === 0 ? 'head' : 'compute'))) {
      fail('NOT_ADMITTED', `${endpoint.peerId} serves admitted peers of its private mesh only; ${admitted(c.head.peerId, 'head') ? from : c.head.peerId} holds no valid ticket for it`)
      return
    }
    const me = c.shadow === true ? hop.mirror?.peerId : hop.peerId
    if (me !== endpoint.peerId || stage === undefined || c.model !== config.name) {
      fail('WRONG_STAGE', `${endpoint.peerId} serves ${config.name} layers ${this.spans().map(spanText).join(' ')}, not ${c.model} ${spanText(hop)}`)
      return
    }
    if ((c.hop === c.route.length - 1) !== stage.head) { fail('WRONG_STAGE', `hop ${c.hop} of ${c.route.length} does not match this stage's head flag`); return }
    const old = this.sessions.get(c.session)
    if (old !== undefined && c.replayTo === undefined) { fail('DUPLICATE_SESSION', `session ${c.session} is already open`); return }
    // hop 0 comes from the head itself, so a head named downstream was checked by the first hop
    if (c.hop === 0 && c.head.peerId !== from) { this.refuse({ peerId: from, addrs: [] }, c.session, 'WRONG_SENDER', `${from} opened hop 0 of a session whose head is ${c.head.peerId}`, from); return }
    // per upstream and head: sessions a flood opens through a stage do not crowd out other heads' sessions through it
    const cap = this.init.maxSessionsPerUpstream ?? MAX_SESSIONS_PER_UPSTREAM
    let held = 0
    for (const x of this.sessions.values()) if (x.upstream === from && x.head.peerId === c.head.peerId) held++
    if (old === undefined && held >= cap) { fail('TOO_MANY_SESSIONS', `${from} already holds ${held} sessions of head ${c.head.peerId} on ${endpoint.peerId} (at most ${cap})`); return }
    const session = stage.createSession()
    // a decoder stage (cross-attention) computes over the encoder memory its head handed this peer (component protocol)
    if (this.init.crossAttention !== undefined) {
      const memory = this.init.memory?.(c.session)
      if (memory === undefined) { session.close(); fail('NO_MEMORY', `${endpoint.peerId} holds no encoder memory for session ${c.session}: the head sends it before opening`); return }
      try {
        (session as DecoderSession).setMemory(memory.data, memory.n)
      } catch (err) {
        session.close()
        fail('BAD_MEMORY', `${endpoint.peerId}: ${(err as Error).message}`)
        return
      }
    }
    // a replacement opened again (a second recovery) starts over
    if (old !== undefined) this.drop(old)
    const s: ServedSession = {
      id: sessionBytes(c.session), hex: c.session, upstream: from, route: c.route, hop: c.hop, head: c.head, sampling: c.sampling,
      stage, session, log: new OutputLog(config.contextLength), queue: [], queuedBytes: 0, closing: false, failed: false,
      minStep: c.step ?? 0, replayTo: c.replayTo ?? -1, lastActive: performance.now(), shadow: c.shadow === true
    }
    this.sessions.set(c.session, s)
    const next = c.route[c.hop + 1]
    if (s.shadow || next === undefined || (c.replayTo !== undefined && c.hop >= c.replayTo)) return
    // the frames that follow go on the same stream, after it
    const { shadow: _, ...open } = c
    void endpoint.send(next, encodeControl({ ...open, hop: c.hop + 1 })).catch(err => { this.failSession(s, 'UNREACHABLE', (err as Error).message, next.peerId) })
    // the next hop's mirror gets the session too, and then every frame the next hop gets
    if (next.mirror !== undefined && c.replayTo === undefined) void endpoint.send(next.mirror, encodeControl({ ...open, hop: c.hop + 1, shadow: true })).catch(() => {})
  }

  private close (session: string, from: string): void {
    const s = this.sessions.get(session)
    if (s === undefined || (s.upstream !== from && s.head.peerId !== from)) return
    s.closing = true
    if (s.queue.length === 0 && !this.computing.has(s)) this.finishClose(s)
  }

  /** Forget a closing session and pass the close on (after its frames, on the same stream). */
  private finishClose (s: ServedSession): void {
    if (this.sessions.get(s.hex) !== s) return
    this.drop(s)
    const next = s.route[s.hop + 1]
    if (next === undefined || s.shadow) return
    void this.init.endpoint.send(next, encodeControl({ type: 'close', session: s.hex })).catch(() => {})
    if (next.mirror !== undefined) void this.init.endpoint.send(next.mirror, encodeControl({ type: 'close', session: s.hex })).catch(() => {})
  }

  /** Serve a range a head asks for (a replacement in a recovery), then say so with the numerics it will use. */
  private async prepare (c: Extract<ControlMessage, { type: 'prepare' }>, from: string): Promise<void> {
    const { endpoint, config } = this.init
    const to: PeerRef = { peerId: from, addrs: [] }
    try {
      if (c.model !== config.name) throw Object.assign(new Error(`${endpoint.peerId} serves ${config.name}, not ${c.model}`), { code: 'WRONG_MODEL' })
      if (c.layers[1] > config.nLayers) throw Object.assign(new Error(`${config.name} has ${config.nLayers} layers, not [${c.layers.join(', ')}]`), { code: 'WRONG_STAGE' })
      if (c.units !== undefined && c.units[1] > 2 * config.nLayers) throw Object.assign(new Error(`${config.name} has ${2 * config.nLayers} units, not ${spanText(c)}`), { code: 'WRONG_STAGE' })
      await this.serve(c.layers, { units: c.units })
      await endpoint.send(to, encodeControl({ type: 'prepared', session: c.session, ...spanOf(c), backend: this.init.backend.name, activations: this.init.activations ?? 'F32' }))
    } catch (err) {
      const e = err as Error & { code?: string }
      await endpoint.send(to, encodeControl({ type: 'error', session: c.session, code: e.code ?? e.name, message: `${endpoint.peerId}: ${e.message}` })).catch(() => {})
    }
  }

  /** A hash of what this stage sent for a session up to a position (the head compares replicas at level critical). */
  private async digest (c: Extract<ControlMessage, { type: 'digest' }>, from: string): Promise<void> {
    const { endpoint } = this.init
    const s = this.sessions.get(c.session)
    const to: PeerRef = { peerId: from, addrs: [] }
    const digest = s === undefined || s.head.peerId !== from ? undefined : await s.log.digest(c.position)
    const reply: ControlMessage = digest === undefined
      ? { type: 'error', session: c.session, code: 'NO_DIGEST', message: `${endpoint.peerId} holds no output of session ${c.session} at position ${c.position}` }
      : { type: 'digested', session: c.session, position: c.position, digest }
    await endpoint.send(to, encodeControl(reply)).catch(() => {})
  }

  private reroute (c: Reroute, from: string): void {
    const s = this.sessions.get(c.session)
    if (s === undefined || s.head.peerId !== from) {
      this.init.endpoint.reject('UNKNOWN_SESSION')
      void this.init.endpoint.send({ peerId: from, addrs: [] }, encodeControl({ type: 'error', session: c.session, code: 'UNKNOWN_SESSION', message: `${this.init.endpoint.peerId} holds no session ${c.session} of yours` })).catch(() => {})
      return
    }
    s.pendingReroute = { msg: c, from, until: performance.now() + MIRROR_CATCH_UP_MS }
    this.tryReroute(s)
  }

  /**
   * Apply a pending reroute once the session is not computing and holds every position before
   * the resume point: replayed frames still queued go first, and a mirror that is behind gets
   * up to MIRROR_CATCH_UP_MS for the frames still on their way.
   */
  private tryReroute (s: ServedSession): void {
    const r = s.pendingReroute
    if (r === undefined || this.computing.has(s) || s.queue.some(f => f.position < r.msg.position)) return
    if (s.session.position < r.msg.position && performance.now() < r.until) {
      setTimeout(() => { if (s.pendingReroute === r) this.tryReroute(s) }, 10)
      return
    }
    this.applyReroute(s, r.msg)
  }

  /**
   * Rewind to `position`, take the new route, and when the next hop is a replacement replay
   * the output log into it (queued on the stream before any later frame); then tell the head.
   */
  private applyReroute (s: ServedSession, c: Reroute): void {
    const { endpoint } = this.init
    s.pendingReroute = undefined
    const fail = (code: string, message: string): void => { this.refuse(s.head, s.hex, code, `${endpoint.peerId}: ${message}`, s.head.peerId) }
    const hop = c.route[c.hop]
    if (hop.peerId !== endpoint.peerId || spanKey(hop) !== stageKey(s.stage)) { fail('WRONG_STAGE', `reroute names hop ${c.hop} ${spanText(hop)}, this session runs ${spanText(spanOfUnits(s.stage.units))}`); return }
    if (s.session.position < c.position) { fail('REROUTE_BEHIND', `holds ${s.session.position} positions, the reroute resumes at ${c.position}`); return }
    const replaying = c.replayTo !== undefined && c.replayTo > c.hop
    if (replaying && (!s.log.complete || s.log.length < c.position)) { fail('NO_LOG', `the output log holds ${s.log.length} positions${s.log.complete ? '' : ' (past its byte bound)'}; cannot replay ${c.position}`); return }
    this.counts.reroutes++
    this.clearQueue(s)
    const r = this.ready.indexOf(s)
    if (r >= 0) this.ready.splice(r, 1)
    s.session.truncate(c.position)
    s.log.truncate(c.position)
    s.route = c.route
    s.hop = c.hop
    s.upstream = c.hop === 0 ? s.head.peerId : c.route[c.hop - 1].peerId
    s.minStep = c.step
    s.failed = false
    s.closing = false
    s.shadow = false // a mirror named as the hop is promoted
    s.lastActive = performance.now()
    const next = c.route[c.hop + 1]
    if (replaying && next !== undefined) {
      const onError = (err: Error): void => { this.failSession(s, 'UNREACHABLE', err.message, next.peerId) }
      const open: Open = { type: 'open', session: s.hex, model: this.init.config.name, hop: c.hop + 1, route: c.route, head: s.head, sampling: s.sampling, replayTo: c.replayTo, step: c.step }
      endpoint.send(next, encodeControl(open)).catch(onError)
      for (const e of s.log.replay()) {
        endpoint.send(next, this.outputFrame(s, c.step, e.position, e.n, e.data as Float32Array, { replay: true })).catch(onError)
        this.counts.replayed++
      }
    }
    void endpoint.send(s.head, encodeControl({ type: 'rerouted', session: s.hex, hop: c.hop })).catch(() => {})
  }

  private outputFrame (s: ServedSession, step: number, position: number, n: number, hidden: Float32Array, flags: { partial?: boolean, replay?: boolean }): Uint8Array {
    const dtype = this.init.activations ?? 'F32'
    return encodeFrame({ kind: 'activations', session: s.id, step, position, dtype, shape: [n, this.init.config.dim], payload: activationPayload(hidden, dtype), ...flags })
  }

  /**
   * Run passes while frames wait: each takes the oldest waiting frame of up to `batchCap()`
   * sessions of one range, in the order their frames arrived. Before each, one macrotask turn
   * lets frames that arrived during the last pass be read, so they join this one; when fewer
   * than the cap are waiting and other sessions are in flight, the pass waits for them up to
   * BATCH_WAIT of the last pass's time (a pass of k + 1 steps costs far less than k and then 1).
   */
  private async drain (): Promise<void> {
    for (;;) {
      await nextTask()
      if (this.ready.length === 0) return
      const batch: Array<{ s: ServedSession, frame: Frame }> = []
      const cap = this.batchCap()
      if (this.ready.length < cap && this.inFlight() > this.ready.length) await this.awaitFrames(cap, performance.now() + BATCH_WAIT * this.lastPassMs)
      const stage = this.ready.find(s => this.sessions.get(s.hex) === s)?.stage
      for (let i = 0; batch.length < cap && i < this.ready.length;) {
        const s = this.ready[i]
        if (this.sessions.get(s.hex) !== s) { this.ready.splice(i, 1); continue } // dropped
        if (s.stage !== stage) { i++; continue } // another range: a later pass
        this.ready.splice(i, 1)
        if (s.failed) {
          this.clearQueue(s)
          if (s.closing) this.finishClose(s)
          continue
        }
        const frame = this.dequeue(s)
        if (frame !== undefined) batch.push({ s, frame })
      }
      if (batch.length === 0) continue
      this.computing = new Set(batch.map(b => b.s))
      const t0 = performance.now()
      try {
        await this.forward(batch[0].s.stage, batch)
        this.lastPassMs = performance.now() - t0
      } finally {
        this.computing.clear()
      }
      for (const { s } of batch) {
        this.tryReroute(s)
        if (s.failed) this.clearQueue(s)
        if (s.queue.length > 0) this.ready.push(s)
        else if (s.closing) this.finishClose(s)
      }
    }
  }

  /** Sessions that had a frame recently (a leaked session does not make passes wait for it). */
  private inFlight (): number {
    const since = performance.now() - ACTIVE_WINDOW_MS
    let n = 0
    for (const s of this.sessions.values()) if (s.lastActive >= since) n++
    return n
  }

  /**
   * Most session steps in one pass: the sessions in flight spread over the stages of their
   * route, so that with several sessions each stage works on its own group while the others
   * compute theirs, instead of one batch of everything travelling the route while the other
   * stages wait.
   */
  private batchCap (): number {
    const stages = this.ready[0].route.length
    return Math.max(1, Math.ceil(this.inFlight() / stages))
  }

  /** Until `cap` sessions have frames waiting, or `deadline`. */
  private async awaitFrames (cap: number, deadline: number): Promise<void> {
    while (this.ready.length < cap) {
      const left = deadline - performance.now()
      if (left <= 0) return
      await new Promise<void>(resolve => {
        const timer = setTimeout(resolve, left)
        this.arrival = () => { clearTimeout(timer); resolve() }
      })
      this.arrival = undefined
    }
  }

  private async forward (stage: Stage, batch: Array<{ s: ServedSession, frame: Frame }>): Promise<void> {
    const { config, endpoint } = this.init
    const items: BatchItem[] = []
    const taken: typeof batch = []
    for (const b of batch) {
      try {
        const { frame } = b
        const input = stage.embed
          ? { position: frame.position, tokens: frameTokens(frame, config.vocabSize) }
          : { position: frame.position, hidden: frameActivations(frame, config.dim) }
        const sample = stage.head && frame.partial !== true && frame.replay !== true && !b.s.shadow
        items.push({ session: b.s.session, input, options: sample ? { sample: b.s.sampling } : {} })
        taken.push(b)
      } catch (err) {
        this.failWith(b.s, err)
      }
    }
    if (items.length === 0) return
    const results = await stage.forwardBatch(items)
    this.counts.batches++
    results.forEach((r, i) => {
      const { s, frame } = taken[i]
      if (r.status === 'rejected') { this.failWith(s, r.reason); return }
      if (this.sessions.get(s.hex) !== s) return // dropped while computing
      this.counts.forwards++
      const out = r.value
      const n = frame.shape[0]
      try {
        let to: PeerRef
        let bytes: Uint8Array
        if (s.shadow) {
          // a mirror keeps the state a takeover needs and sends nothing
          if (!stage.head) s.log.append(frame.position, n, out.hidden!)
          return
        }
        if (stage.head) {
          if (frame.partial === true || frame.replay === true) return // nothing to sample yet, or a replayed position
          s.log.append(frame.position, n, out.token!)
          to = s.head
          bytes = encodeFrame({ kind: 'sampled', session: s.id, step: frame.step, position: frame.position + n, dtype: 'I32', shape: [1], payload: tokenPayload([out.token!]) })
        } else {
          s.log.append(frame.position, n, out.hidden!)
          if (frame.replay === true && s.hop >= s.replayTo) return // the next hop holds these positions
          to = s.route[s.hop + 1]
          bytes = this.outputFrame(s, frame.step, frame.position, n, out.hidden!, { partial: frame.partial, replay: frame.replay })
        }
        // not awaited: writes to one peer go out in call order, and the next batch need not wait for them
        endpoint.send(to, bytes).catch(err => { this.failSession(s, 'UNREACHABLE', (err as Error).message, to.peerId) })
        const mirror = stage.head || frame.replay === true ? undefined : s.route[s.hop + 1].mirror
        if (mirror !== undefined) endpoint.send(mirror, bytes).catch(() => {}) // a lost mirror costs the session nothing
      } catch (err) {
        this.failWith(s, err)
      }
    })
  }

  private failSession (s: ServedSession, code: string, message: string, blame?: string): void {
    if (s.failed) return
    s.failed = true
    this.counts.failedSessions++
    this.init.endpoint.reject(code)
    const msg: ControlMessage = { type: 'error', session: s.hex, code, message: `${this.init.endpoint.peerId}: ${message}`, ...(blame === undefined ? {} : { blame }) }
    void this.init.endpoint.send(s.head, encodeControl(msg)).catch(() => {})
  }

  private failWith (s: ServedSession, err: unknown): void {
    const e = err as Error & { code?: string }
    this.failSession(s, e.code ?? e.name, e.message)
  }
}
