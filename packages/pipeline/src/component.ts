import { lpStream } from '@libp2p/utils'
import { DEFAULT_MAX_FRAME_BYTES, InvalidComponentMessageError, decodeComponent, encodeComponent } from '@shardmesh/protocol'
import type { Connection, Stream } from '@libp2p/interface'
import type { ComponentMessage, PeerRef, RouteHop } from '@shardmesh/protocol'
import { DIAL_TIMEOUT_MS } from './constants.ts'
import { NotStartedError } from './errors.ts'
import { newSessionId, sessionHex } from './session-id.ts'
import type { PipelineNode } from './endpoint.ts'
import { spanKey, spanOf, spanText } from './span.ts'
import type { Span } from './span.ts'
import { dialTarget } from './dial.ts'

/** Passes through the parts of a model of several parts, their results, and encoder memories for decoder sessions. */
export const COMPONENT_PROTOCOL = '/shardmesh/component/1.0.0'
/** Longest a head waits for a pass's result or a memory's acknowledgement. */
const REPLY_TIMEOUT_MS = 60_000
/** A decoder session's memory that no session took is dropped after this long. */
const MEMORY_TTL_MS = 5 * 60_000
/** Memory bytes kept for decoder sessions at most (the oldest go first). */
const MAX_MEMORY_BYTES = 256 * 1024 * 1024

/** What a pass gives a part's stage. */
export type PartInput = { tokens: number[] } | { pixels: Float32Array } | { hidden: Float32Array, n: number }
/** What a part's stage gives: hidden rows for the next stage (or an encoder's memory), or a tower's embedding. */
export type PartOutput = { hidden: Float32Array, n: number } | { embedding: Float32Array }

/** A stage of a part (the engine's encoder stages fit): stateless, one forward per pass. */
export interface PartStage {
  readonly layers: [number, number]
  forward: (input: PartInput) => Promise<PartOutput>
  close: () => Promise<void>
}

/** A pass that failed: at `blame` when a peer is named (the one that failed, or an unreachable next hop). */
export class ComponentPassError extends Error {
  name = 'ComponentPassError'
  readonly code: string
  readonly blame?: string
  constructor (code: string, message: string, blame?: string) {
    super(message)
    this.code = code
    this.blame = blame
  }
}

export interface ComponentEndpointInit {
  node: PipelineNode
  /** The model this peer serves parts of (a pass naming another is refused). */
  model: string
  /** Loads `layers` (or units) of part `component` (for `serve`). */
  load?: (component: string, span: Span) => Promise<PartStage>
  /** Private meshes: may `peerId` act as `role`? @default everyone */
  admitted?: (peerId: string, role: 'compute' | 'head') => boolean
  /** @default DEFAULT_MAX_FRAME_BYTES */
  maxBytes?: number
  /** @default MEMORY_TTL_MS */
  memoryTtlMs?: number
  /** @default MAX_MEMORY_BYTES */
  maxMemoryBytes?: number
}

const rowsOf = (out: PartOutput): { data: Float32Array, n: number } => 'embedding' in out ? { data: out.embedding, n: 1 } : { data: out.hidden, n: out.n }

/**
 * The component protocol on one peer (DESIGN: strategy `component`): as a stage it runs the
 * parts' ranges it serves on every pass that names it and passes the output on — the next hop,
 * or the head; as a head it starts passes (`encode`) and hands encoder memories to decoder
 * stages (`sendMemory`); as a decoder stage it keeps memories until a session takes them.
 * Messages are decoded strictly; a bad one is counted and answered, never fatal.
 */
export class ComponentEndpoint {
  private readonly init: ComponentEndpointInit
  private readonly stages = new Map<string, Promise<PartStage>>()
  private readonly pending = new Map<string, { resolve: (m: ComponentMessage) => void, reject: (err: Error) => void }>()
  private readonly memories = new Map<string, { data: Float32Array, n: number, at: number }>()
  private memoryBytes = 0
  private readonly counts: Record<string, number> = {}
  private started = false

  constructor (init: ComponentEndpointInit) {
    this.init = init
  }

  get peerId (): string { return this.init.node.peerId.toString() }

  async start (): Promise<void> {
    if (this.started) return
    await this.init.node.handle(COMPONENT_PROTOCOL, (stream: Stream, connection: Connection) => { void this.receive(stream, connection.remotePeer.toString()) })
    this.started = true
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    await this.init.node.unhandle(COMPONENT_PROTOCOL).catch(() => {})
    for (const p of this.pending.values()) p.reject(new NotStartedError('the component endpoint stopped'))
    this.pending.clear()
    const stages = [...this.stages.values()]
    this.stages.clear()
    for (const s of stages) await (await s.catch(() => undefined))?.close()
  }

  /** Refusals and failures by reason. */
  rejections (): Record<string, number> { return { ...this.counts } }

  /** Messages and their bytes this peer sent to others (passes, results, memories, answers). */
  readonly sent = { messages: 0, bytes: 0 }

  /** Load `layers` (with `units`, those units) of `component` and serve them on passes that name this peer. */
  async serve (component: string, layers: [number, number], units?: [number, number]): Promise<void> {
    if (this.init.load === undefined) throw new NotStartedError('this component endpoint has no stage loader')
    const span = spanOf({ layers, units })
    const key = `${component}:${spanKey(span)}`
    let stage = this.stages.get(key)
    if (stage === undefined) {
      stage = this.init.load(component, span)
      stage.catch(() => { if (this.stages.get(key) === stage) this.stages.delete(key) })
      this.stages.set(key, stage)
    }
    await stage
  }

  /**
   * Run `input` through the part `component` along `route` (its stages in order); resolves
   * with the last stage's output. Rejects with ComponentPassError (`blame`: the peer at fault,
   * when known) or on timeout.
   */
  async encode (route: RouteHop[], component: string, input: PartInput, options: { signal?: AbortSignal, timeoutMs?: number } = {}): Promise<PartOutput> {
    const id = sessionHex(newSessionId())
    const reply = this.await(id, options)
    const head: PeerRef = { peerId: this.peerId, addrs: this.init.node.getMultiaddrs().map(String) }
    const base = { type: 'pass' as const, id, model: this.init.model, component, route, hop: 0, head }
    const msg: ComponentMessage = 'tokens' in input
      ? { ...base, input: 'tokens', n: input.tokens.length, data: Int32Array.from(input.tokens) }
      : 'pixels' in input ? { ...base, input: 'pixels', n: 1, data: input.pixels } : { ...base, input: 'hidden', n: input.n, data: input.hidden }
    await this.send(route[0], msg).catch(err => { this.settle(id, new ComponentPassError('UNREACHABLE', (err as Error).message, route[0].peerId)) })
    const m = await reply
    if (m.type !== 'result') throw new ComponentPassError('BAD_REPLY', `expected a result, got ${m.type}`)
    return m.kind === 'embedding' ? { embedding: m.data } : { hidden: m.data, n: m.n }
  }

  /** Give decoder stage `hop` the encoder memory of session `session` (hex); resolves once it has it. */
  async sendMemory (hop: PeerRef, session: string, memory: Float32Array, n: number, options: { signal?: AbortSignal, timeoutMs?: number } = {}): Promise<void> {
    if (hop.peerId === this.peerId) { this.keepMemory(session, memory, n); return }
    // one session's memory goes to several stages at once: each answer is awaited per peer
    const key = `${session}@${hop.peerId}`
    const reply = this.await(key, options)
    await this.send(hop, { type: 'memory', id: session, n, data: memory }).catch(err => { this.settle(key, new ComponentPassError('UNREACHABLE', (err as Error).message, hop.peerId)) })
    const m = await reply
    if (m.type !== 'memory-ok') throw new ComponentPassError('BAD_REPLY', `expected memory-ok, got ${m.type}`)
  }

  /** The memory kept for decoder session `session` (hex), if any; it stays until `dropMemory` or its time runs out. */
  memory (session: string): { data: Float32Array, n: number } | undefined {
    this.expire()
    return this.memories.get(session)
  }

  dropMemory (session: string): void {
    const m = this.memories.get(session)
    if (m === undefined) return
    this.memories.delete(session)
    this.memoryBytes -= m.data.byteLength
  }

  private keepMemory (session: string, data: Float32Array, n: number): void {
    this.dropMemory(session)
    this.expire()
    const max = this.init.maxMemoryBytes ?? MAX_MEMORY_BYTES
    if (data.byteLength > max) throw new ComponentPassError('TOO_LARGE', `a memory of ${data.byteLength} bytes exceeds ${max}`)
    for (const [k, m] of this.memories) {
      if (this.memoryBytes + data.byteLength <= max) break
      this.memories.delete(k)
      this.memoryBytes -= m.data.byteLength
      this.count('MEMORY_EVICTED')
    }
    this.memories.set(session, { data, n, at: Date.now() })
    this.memoryBytes += data.byteLength
  }

  private expire (): void {
    const ttl = this.init.memoryTtlMs ?? MEMORY_TTL_MS
    for (const [k, m] of this.memories) if (Date.now() - m.at > ttl) this.dropMemory(k)
  }

  private async await (id: string, options: { signal?: AbortSignal, timeoutMs?: number }): Promise<ComponentMessage> {
    if (!this.started) throw new NotStartedError('start the component endpoint first')
    const signal = AbortSignal.any([AbortSignal.timeout(options.timeoutMs ?? REPLY_TIMEOUT_MS), ...(options.signal === undefined ? [] : [options.signal])])
    return await new Promise<ComponentMessage>((resolve, reject) => {
      const abort = (): void => { this.pending.delete(id); reject(new ComponentPassError('TIMEOUT', `no reply to ${id}: ${String((signal.reason as Error)?.message ?? signal.reason)}`)) }
      if (signal.aborted) { abort(); return }
      signal.addEventListener('abort', abort, { once: true })
      this.pending.set(id, {
        resolve: m => { signal.removeEventListener('abort', abort); resolve(m) },
        reject: err => { signal.removeEventListener('abort', abort); reject(err) }
      })
    })
  }

  private settle (id: string, result: ComponentMessage | Error): void {
    const p = this.pending.get(id)
    if (p === undefined) return
    this.pending.delete(id)
    if (result instanceof Error) p.reject(result)
    else if (result.type === 'error') p.reject(new ComponentPassError(result.code, result.message, result.blame))
    else p.resolve(result)
  }

  private async send (to: PeerRef, msg: ComponentMessage): Promise<void> {
    const signal = AbortSignal.timeout(DIAL_TIMEOUT_MS)
    const target = dialTarget(to.peerId, to.addrs)
    const stream = await this.init.node.dialProtocol(target, COMPONENT_PROTOCOL, { signal })
    try {
      const bytes = encodeComponent(msg)
      await lpStream(stream, { maxDataLength: this.init.maxBytes ?? DEFAULT_MAX_FRAME_BYTES }).write(bytes, { signal })
      this.sent.messages++
      this.sent.bytes += bytes.byteLength
      await stream.close({ signal })
    } catch (err) {
      stream.abort(err as Error)
      throw err
    }
  }

  private async receive (stream: Stream, from: string): Promise<void> {
    let m: ComponentMessage
    try {
      const bytes = (await lpStream(stream, { maxDataLength: this.init.maxBytes ?? DEFAULT_MAX_FRAME_BYTES }).read({ signal: AbortSignal.timeout(REPLY_TIMEOUT_MS) })).slice()
      await stream.close().catch(() => {})
      m = decodeComponent(bytes, { maxBytes: this.init.maxBytes })
    } catch (err) {
      this.count(err instanceof InvalidComponentMessageError ? 'INVALID' : 'STREAM')
      stream.abort(err as Error)
      return
    }
    switch (m.type) {
      case 'pass': await this.pass(m, from); return
      case 'memory': {
        const reply = (msg: ComponentMessage): void => { void this.send({ peerId: from, addrs: [] }, msg).catch(() => {}) }
        if (this.init.admitted !== undefined && !this.init.admitted(from, 'head')) { this.count('NOT_ADMITTED'); reply({ type: 'error', id: m.id, code: 'NOT_ADMITTED', message: `${from} holds no head ticket for this private mesh` }); return }
        try {
          this.keepMemory(m.id, m.data, m.n)
          reply({ type: 'memory-ok', id: m.id })
        } catch (err) {
          this.count((err as ComponentPassError).code ?? 'MEMORY')
          reply({ type: 'error', id: m.id, code: (err as ComponentPassError).code ?? 'MEMORY', message: (err as Error).message })
        }
        return
      }
      default: {
        // results and errors answer this peer's own passes (by id) and memories (by id and peer)
        const perPeer = `${m.id}@${from}`
        this.settle(this.pending.has(perPeer) ? perPeer : m.id, m)
      }
    }
  }

  /** Run this peer's hop of a pass and hand the output on. */
  private async pass (m: Extract<ComponentMessage, { type: 'pass' }>, from: string): Promise<void> {
    const fail = (code: string, message: string, blame?: string): void => {
      this.count(code)
      void this.send(m.head, { type: 'error', id: m.id, code, message: `${this.peerId}: ${message}`, ...(blame === undefined ? {} : { blame }) }).catch(() => {})
    }
    const hop = m.route[m.hop]
    const { admitted } = this.init
    if (admitted !== undefined && (!admitted(m.head.peerId, 'head') || !admitted(from, m.hop === 0 ? 'head' : 'compute'))) { fail('NOT_ADMITTED', 'a pass from a peer without a ticket'); return }
    if (hop.peerId !== this.peerId || m.model !== this.init.model) { fail('WRONG_STAGE', `serves ${this.init.model}, not hop ${m.hop} (${hop.peerId}) of ${m.model}`); return }
    const stage = this.stages.get(`${m.component}:${spanKey(hop)}`)
    if (stage === undefined) { fail('NOT_SERVING', `serves no layers ${spanText(hop)} of ${m.component}`); return }
    let out: PartOutput
    try {
      const input: PartInput = m.input === 'tokens' ? { tokens: Array.from(m.data) } : m.input === 'pixels' ? { pixels: m.data } : { hidden: m.data, n: m.n }
      out = await (await stage).forward(input)
    } catch (err) {
      fail((err as Error).name, (err as Error).message)
      return
    }
    const { data, n } = rowsOf(out)
    const last = m.hop === m.route.length - 1
    if ('embedding' in out && !last) { fail('WRONG_STAGE', 'the route goes on past the pooling stage'); return }
    if (last) {
      await this.send(m.head, { type: 'result', id: m.id, kind: 'embedding' in out ? 'embedding' : 'hidden', n, data }).catch(() => { this.count('HEAD_UNREACHABLE') })
      return
    }
    const next = m.route[m.hop + 1]
    await this.send(next, { ...m, hop: m.hop + 1, input: 'hidden', n, data }).catch(err => { fail('UNREACHABLE', `next hop ${next.peerId}: ${(err as Error).message}`, next.peerId) })
  }

  private count (why: string): void { this.counts[why] = (this.counts[why] ?? 0) + 1 }
}

/**
 * A pass through part `component` that survives lost stages: the route of the plan's
 * primaries, and when a pass fails, the failed hop (the blamed peer, else every hop) moves to
 * the next of its stage's standbys and the pass runs again — a pass is stateless, so a retry
 * computes the same output. `recoveries` counts the retries.
 */
export async function encodePart (endpoint: ComponentEndpoint, stages: Array<{ range: [number, number], units?: [number, number], primary: string, standbys: string[] }>, component: string, input: PartInput, options: { addrsOf: (peerId: string) => string[], attempts?: number, signal?: AbortSignal, timeoutMs?: number }): Promise<{ output: PartOutput, recoveries: number, route: RouteHop[] }> {
  const choice = stages.map(() => 0)
  const candidates = stages.map(s => [s.primary, ...s.standbys])
  const attempts = options.attempts ?? 1 + Math.max(...candidates.map(c => c.length - 1))
  let last: Error | undefined
  for (let attempt = 0; attempt < attempts; attempt++) {
    const route = stages.map((s, i): RouteHop => {
      const peerId = candidates[i][choice[i] % candidates[i].length]
      return { peerId, addrs: options.addrsOf(peerId), layers: s.range, ...(s.units === undefined ? {} : { units: s.units }) }
    })
    try {
      return { output: await endpoint.encode(route, component, input, options), recoveries: attempt, route }
    } catch (err) {
      options.signal?.throwIfAborted()
      last = err as Error
      const blame = (err as ComponentPassError).blame
      const at = route.findIndex(h => h.peerId === blame)
      if (at >= 0) choice[at]++
      else for (let i = 0; i < choice.length; i++) choice[i]++
    }
  }
  throw last ?? new ComponentPassError('NO_ROUTE', `no route through ${component}`)
}
