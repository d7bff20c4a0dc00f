import { activationPayload, encodeControl, encodeFrame, frameActivations, frameTokens } from '@shardmesh/protocol'
import type { ActivationDType, Backend, Stage, StageSession, TensorSource } from '@shardmesh/engine'
import type { ModelConfig } from '@shardmesh/model'
import type { ControlMessage, Frame, PeerRef, RouteHop } from '@shardmesh/protocol'
import type { Endpoint, Inbound } from './endpoint.ts'
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
  chain: Promise<void>
  failed: boolean
}

export interface StageServerStats {
  sessions: number
  forwards: number
  failedSessions: number
}

/**
 * Serves one layer range: a KV cache and output log per session, activations to the next
 * stage's peer over a stream kept open, and (last stage) the sampled token to the head.
 * A bad input fails only its own session (the head hears why); other sessions go on.
 */
export class StageServer {
  private readonly init: StageServerInit
  private stage: Stage | undefined
  private readonly sessions = new Map<string, ServedSession>()
  private unlisten: (() => void) | undefined
  private forwards = 0
  private failedSessions = 0

  constructor (init: StageServerInit) {
    this.init = init
  }

  /** The range served, once `serve()` resolved. */
  get layers (): [number, number] | undefined { return this.stage?.layers }

  stats (): StageServerStats { return { sessions: this.sessions.size, forwards: this.forwards, failedSessions: this.failedSessions } }

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
    await Promise.all(all.map(async s => { await s.chain; s.session.close() }))
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
    const frame = msg.frame
    s.chain = s.chain.then(async () => { await this.forward(s, frame) })
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
      session: this.stage.createSession(), log: new OutputLog(config.contextLength), chain: Promise.resolve(), failed: false
    }
    this.sessions.set(c.session, s)
    const next = c.route[c.hop + 1]
    if (next !== undefined) {
      s.chain = endpoint.send(next, encodeControl({ ...c, hop: c.hop + 1 })).catch(err => { this.failSession(s, 'UNREACHABLE', (err as Error).message) })
    }
  }

  private close (session: string, from: string): void {
    const s = this.sessions.get(session)
    if (s === undefined || s.upstream !== from) return
    this.sessions.delete(session)
    void s.chain.then(async () => {
      s.session.close()
      const next = s.route[s.hop + 1]
      if (next !== undefined) await this.init.endpoint.send(next, encodeControl({ type: 'close', session })).catch(() => {})
    })
  }

  private failSession (s: ServedSession, code: string, message: string): void {
    if (s.failed) return
    s.failed = true
    this.failedSessions++
    this.init.endpoint.reject(code)
    void this.init.endpoint.send(s.head, encodeControl({ type: 'error', session: sessionHex(s.id), code, message: `${this.init.endpoint.peerId}: ${message}` })).catch(() => {})
  }

  private async forward (s: ServedSession, frame: Frame): Promise<void> {
    if (s.failed) return
    const { config, endpoint } = this.init
    const stage = this.stage!
    try {
      const n = frame.shape[0]
      const input = stage.embed
        ? { position: frame.position, tokens: frameTokens(frame, config.vocabSize) }
        : { position: frame.position, hidden: frameActivations(frame, config.dim) }
      const out = await s.session.forward(input, stage.head ? { sample: s.sampling } : {})
      this.forwards++
      if (stage.head) {
        s.log.append(frame.position, n, out.token!)
        const payload = new Uint8Array(Int32Array.of(out.token!).buffer)
        await endpoint.send(s.head, encodeFrame({ kind: 'sampled', session: s.id, step: frame.step, position: frame.position + n, dtype: 'I32', shape: [1], payload }))
      } else {
        const dtype = this.init.activations ?? 'F32'
        s.log.append(frame.position, n, out.hidden!)
        await endpoint.send(s.route[s.hop + 1], encodeFrame({ kind: 'activations', session: s.id, step: frame.step, position: frame.position, dtype, shape: [n, config.dim], payload: activationPayload(out.hidden!, dtype) }))
      }
    } catch (err) {
      const e = err as Error & { code?: string }
      this.failSession(s, e.code ?? e.name, e.message)
    }
  }
}
