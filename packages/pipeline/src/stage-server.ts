import { activationPayload, encodeControl, encodeFrame, frameActivations, frameTokens } from '@shardmesh/protocol'
import { nextTask } from '@shardmesh/engine'
import type { ActivationDType, Backend, BatchItem, Stage, StageSession, TensorSource } from '@shardmesh/engine'
import type { ModelConfig } from '@shardmesh/model'
import type { ControlMessage, Frame, PeerRef, RouteHop } from '@shardmesh/protocol'
import type { Endpoint, Inbound } from './endpoint.ts'
import { BATCH_WAIT } from './constants.ts'
import { NotStartedError } from './errors.ts'
import { OutputLog } from './output-log.ts'
import { sessionBytes, sessionHex } from './session-id.ts'

/** Where a stage's weights come from: a checkpoint's tensors, or (weights package) fetched parts. */
export type TensorLoader = TensorSource | ((layers: [number, number], options: { signal?: AbortSignal }) => Promise<TensorSource>)

export interface StageServerInit {
  endpoint: Endpoint
  backend: Backend
  config: ModelConfig
  tensors: TensorLoader
  /** Dtype of activations sent downstream (F16 halves the bytes, rounding). @default 'F32' */
  activations?: ActivationDType
}

interface ServedSession {
  id: Uint8Array
  upstream: string
  route: RouteHop[]
  hop: number
  head: PeerRef
  sampling: Extract<ControlMessage, { type: 'open' }>['sampling']
  session: StageSession
  log: OutputLog
  /** Frames received and not yet computed, in order. */
  queue: Frame[]
  /** A `close` arrived: close once the queue is empty. */
  closing: boolean
  failed: boolean
}

export interface StageServerStats {
  sessions: number
  /** Session steps computed. */
  forwards: number
  /** Passes through the stage (a pass computes one step of each session in its batch). */
  batches: number
  failedSessions: number
}

/**
 * Serves one layer range: a KV cache and output log per session, activations to the next
 * stage's peer over a stream kept open, and (last stage) the sampled token to the head.
 * Frames of different sessions that are waiting together run as one batch
 * (`Stage.forwardBatch`: the weights are read once for all of them), each session's frames
 * in order. A bad input fails only its own session (the head hears why); others go on.
 */
export class StageServer {
  private readonly init: StageServerInit
  private stage: Stage | undefined
  private readonly sessions = new Map<string, ServedSession>()
  private unlisten: (() => void) | undefined
  private forwards = 0
  private batches = 0
  private failedSessions = 0
  /** The batch loop while it runs (one at a time). */
  private running: Promise<void> | undefined
  /** Sessions in the batch being computed. */
  private computing = new Set<ServedSession>()
  /** Sessions with waiting frames, in the order their oldest frame arrived. */
  private readonly ready: ServedSession[] = []
  private lastPassMs = 0
  /** Wakes `awaitFrames` when a session gets a waiting frame. */
  private arrival: (() => void) | undefined

  constructor (init: StageServerInit) {
    this.init = init
  }

  /** The range served, once `serve()` resolved. */
  get layers (): [number, number] | undefined { return this.stage?.layers }

  stats (): StageServerStats { return { sessions: this.sessions.size, forwards: this.forwards, batches: this.batches, failedSessions: this.failedSessions } }

  async start (): Promise<void> {
    await this.init.endpoint.start()
    this.unlisten ??= this.init.endpoint.onMessage(msg => { this.receive(msg) })
  }

  /** Load `layers` (replacing any range served before, which ends its sessions). */
  async serve (layers: [number, number], options: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.unlisten === undefined) throw new NotStartedError('start the stage server before serving a range')
    const { tensors, backend, config } = this.init
    const source = typeof tensors === 'function' ? await tensors(layers, options) : tensors
    const stage = await backend.createStage({ config, layers, tensors: source, activations: this.init.activations })
    await this.dropAll()
    const old = this.stage
    this.stage = stage
    await old?.close()
  }

  async stop (): Promise<void> {
    this.unlisten?.()
    this.unlisten = undefined
    await this.dropAll()
    await this.stage?.close()
    this.stage = undefined
  }

  private async dropAll (): Promise<void> {
    const all = [...this.sessions.values()]
    this.sessions.clear()
    this.ready.length = 0
    await this.running
    for (const s of all) s.session.close()
  }

  private receive (msg: Inbound): void {
    const { endpoint } = this.init
    if ('control' in msg) {
      const c = msg.control
      if (c.type === 'open') this.open(c, msg.from)
      else if (c.type === 'close') this.close(c.session, msg.from)
      return
    }
    if (msg.frame.kind === 'sampled') return // for the driver on this endpoint
    const hex = sessionHex(msg.frame.session)
    const s = this.sessions.get(hex)
    if (s === undefined) { endpoint.reject('UNKNOWN_SESSION'); return }
    if (s.upstream !== msg.from) { endpoint.reject('WRONG_SENDER'); return }
    if (s.failed) return
    s.queue.push(msg.frame)
    if (s.queue.length === 1 && !this.computing.has(s)) {
      this.ready.push(s)
      this.arrival?.()
    }
    this.running ??= this.drain().finally(() => { this.running = undefined })
  }

  private open (c: Extract<ControlMessage, { type: 'open' }>, from: string): void {
    const { endpoint, config } = this.init
    const hop = c.route[c.hop]
    const fail = (code: string, message: string): void => {
      endpoint.reject(code)
      void endpoint.send(c.head, encodeControl({ type: 'error', session: c.session, code, message })).catch(() => {})
    }
    if (this.stage === undefined) { fail('NOT_SERVING', `${endpoint.peerId} serves no layers`); return }
    if (hop.peerId !== endpoint.peerId || hop.layers[0] !== this.stage.layers[0] || hop.layers[1] !== this.stage.layers[1] || c.model !== config.name) {
      fail('WRONG_STAGE', `${endpoint.peerId} serves ${config.name} layers [${this.stage.layers.join(', ')}], not ${c.model} [${hop.layers.join(', ')}]`)
      return
    }
    if ((c.hop === c.route.length - 1) !== this.stage.head) { fail('WRONG_STAGE', `hop ${c.hop} of ${c.route.length} does not match this stage's head flag`); return }
    if (this.sessions.has(c.session)) { fail('DUPLICATE_SESSION', `session ${c.session} is already open`); return }
    const s: ServedSession = {
      id: sessionBytes(c.session), upstream: from, route: c.route, hop: c.hop, head: c.head, sampling: c.sampling,
      session: this.stage.createSession(), log: new OutputLog(config.contextLength), queue: [], closing: false, failed: false
    }
    this.sessions.set(c.session, s)
    const next = c.route[c.hop + 1]
    if (next !== undefined) {
      // the frames that follow go on the same stream, after it
      void endpoint.send(next, encodeControl({ ...c, hop: c.hop + 1 })).catch(err => { this.failSession(s, 'UNREACHABLE', (err as Error).message) })
    }
  }

  private close (session: string, from: string): void {
    const s = this.sessions.get(session)
    if (s === undefined || s.upstream !== from) return
    s.closing = true
    if (s.queue.length === 0 && !this.computing.has(s)) this.finishClose(s)
  }

  /** Forget a closing session and pass the close on (after its frames, on the same stream). */
  private finishClose (s: ServedSession): void {
    const hex = sessionHex(s.id)
    if (this.sessions.get(hex) !== s) return
    this.sessions.delete(hex)
    s.session.close()
    const next = s.route[s.hop + 1]
    if (next !== undefined) void this.init.endpoint.send(next, encodeControl({ type: 'close', session: hex })).catch(() => {})
  }

  /**
   * Run passes while frames wait: each takes the oldest waiting frame of up to `batchCap()`
   * sessions, in the order their frames arrived. Before each, one macrotask turn lets frames
   * that arrived during the last pass be read, so they join this one; when fewer than the cap
   * are waiting and other sessions are in flight, the pass waits for them up to BATCH_WAIT
   * of the last pass's time (a pass of k + 1 steps costs far less than k steps and then 1).
   */
  private async drain (): Promise<void> {
    for (;;) {
      await nextTask()
      if (this.ready.length === 0) return
      const batch: Array<{ s: ServedSession, frame: Frame }> = []
      const cap = this.batchCap()
      if (this.ready.length < cap && this.sessions.size > this.ready.length) await this.awaitFrames(cap, performance.now() + BATCH_WAIT * this.lastPassMs)
      while (batch.length < cap && this.ready.length > 0) {
        const s = this.ready.shift()!
        if (this.sessions.get(sessionHex(s.id)) !== s) continue // dropped
        if (s.failed) {
          s.queue.length = 0
          if (s.closing) this.finishClose(s)
          continue
        }
        const frame = s.queue.shift()
        if (frame !== undefined) batch.push({ s, frame })
      }
      if (batch.length === 0) return
      this.computing = new Set(batch.map(b => b.s))
      const t0 = performance.now()
      try {
        await this.forward(batch)
        this.lastPassMs = performance.now() - t0
      } finally {
        this.computing.clear()
      }
      for (const { s } of batch) {
        if (s.failed) s.queue.length = 0
        if (s.queue.length > 0) this.ready.push(s)
        else if (s.closing) this.finishClose(s)
      }
    }
  }

  /**
   * Most session steps in one pass: the open sessions spread over the stages of their route,
   * so that with several sessions each stage works on its own group while the others compute
   * theirs, instead of one batch of everything travelling the route while the other stages
   * wait.
   */
  private batchCap (): number {
    const stages = this.ready[0].route.length
    return Math.max(1, Math.ceil(this.sessions.size / stages))
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

  private async forward (batch: Array<{ s: ServedSession, frame: Frame }>): Promise<void> {
    const { config, endpoint } = this.init
    const stage = this.stage!
    const items: BatchItem[] = []
    const taken: typeof batch = []
    for (const b of batch) {
      try {
        const { frame } = b
        const input = stage.embed
          ? { position: frame.position, tokens: frameTokens(frame, config.vocabSize) }
          : { position: frame.position, hidden: frameActivations(frame, config.dim) }
        items.push({ session: b.s.session, input, options: stage.head && frame.partial !== true ? { sample: b.s.sampling } : {} })
        taken.push(b)
      } catch (err) {
        this.failWith(b.s, err)
      }
    }
    if (items.length === 0) return
    const results = await stage.forwardBatch(items)
    this.batches++
    results.forEach((r, i) => {
      const { s, frame } = taken[i]
      if (r.status === 'rejected') { this.failWith(s, r.reason); return }
      if (this.sessions.get(sessionHex(s.id)) !== s) return // dropped while computing
      this.forwards++
      const out = r.value
      const n = frame.shape[0]
      try {
        let to: PeerRef
        let bytes: Uint8Array
        if (stage.head && frame.partial === true) return // a prompt chunk with more to follow: nothing to sample yet
        if (stage.head) {
          s.log.append(frame.position, n, out.token!)
          to = s.head
          bytes = encodeFrame({ kind: 'sampled', session: s.id, step: frame.step, position: frame.position + n, dtype: 'I32', shape: [1], payload: new Uint8Array(Int32Array.of(out.token!).buffer) })
        } else {
          const dtype = this.init.activations ?? 'F32'
          s.log.append(frame.position, n, out.hidden!)
          to = s.route[s.hop + 1]
          bytes = encodeFrame({ kind: 'activations', session: s.id, step: frame.step, position: frame.position, dtype, shape: [n, config.dim], payload: activationPayload(out.hidden!, dtype), partial: frame.partial })
        }
        // not awaited: writes to one peer go out in call order, and the next batch need not wait for them
        endpoint.send(to, bytes).catch(err => { this.failWith(s, err) })
      } catch (err) {
        this.failWith(s, err)
      }
    })
  }

  private failSession (s: ServedSession, code: string, message: string): void {
    if (s.failed) return
    s.failed = true
    this.failedSessions++
    this.init.endpoint.reject(code)
    void this.init.endpoint.send(s.head, encodeControl({ type: 'error', session: sessionHex(s.id), code, message: `${this.init.endpoint.peerId}: ${message}` })).catch(() => {})
  }

  private failWith (s: ServedSession, err: unknown): void {
    const e = err as Error & { code?: string }
    this.failSession(s, e.code ?? e.name, e.message)
  }
}
