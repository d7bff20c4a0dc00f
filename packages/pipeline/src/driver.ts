import { ContextLengthError } from '@shardmesh/model'
import { StageInputError, timings } from '@shardmesh/engine'
import { encodeControl, encodeFrame, frameTokens, tokenPayload } from '@shardmesh/protocol'
import type { FinishReason, SamplingParams, Timings } from '@shardmesh/engine'
import type { ModelConfig } from '@shardmesh/model'
import type { ControlMessage, ControlSampling, RouteHop } from '@shardmesh/protocol'
import { classify, recoverable } from './classify.ts'
import { ACK_TIMEOUT_MS, HANG_AFTER_MIN_MS, REROUTE_ACK_MS, HANG_AFTER_STEPS, HANG_PROBE_MS, MAX_RECOVERY_ATTEMPTS, PREFILL_CHUNK, RECOVERY_BACKOFF_MS, STEP_TIMEOUT_MS } from './constants.ts'
import type { Endpoint, Inbound } from './endpoint.ts'
import { HopLostError, RecoveryFailedError, StageFailedError } from './errors.ts'
import type { ErrorClass, FaultTolerance, RecoveryEvent, RecoveryStrategy } from './fault-tolerance.ts'
import { newSessionId, sessionHex } from './session-id.ts'
import { spanKey, spanOf } from './span.ts'

export interface SessionDriverInit {
  endpoint: Endpoint
  config: ModelConfig
  /** Longest wait for one step's token (a backstop: lost hops are detected from connection and membership events). @default STEP_TIMEOUT_MS */
  stepTimeoutMs?: number
  /**
   * Prompt positions per frame when the route has several stages: the first stage starts on
   * the next chunk while the later ones work on this one. @default PREFILL_CHUNK
   */
  prefillChunk?: number
}

/** What a recovery is asked to fix. */
export interface RecoveryRequest {
  /** The route the session was on. */
  route: RouteHop[]
  /** Peers of the route taken as lost (may be empty when the failure named none). */
  lost: string[]
  error: Error
  class: ErrorClass
  /** 0 for the first attempt of this failure, then 1, 2… (escalate on each). */
  attempt: number
  signal?: AbortSignal
}

/** How to resume: the new route (replacements already serving their range) and how to rebuild it. */
export interface RecoveryDecision {
  route: RouteHop[]
  /** `replay`: same ranges, only lost hops rebuilt from the upstream output log; `reprefill`: a new session on `route`. */
  path: 'replay' | 'reprefill'
  strategy: RecoveryStrategy
  /** Hops whose new peer is the old hop's mirror: it holds the session already, so it is rerouted, not rebuilt. */
  warm?: number[]
}

/** Chooses the new route of a failed session; throws when it cannot (the session then fails with that error). */
export type Repair = (req: RecoveryRequest) => Promise<RecoveryDecision>

export interface PipelineGenerateInit {
  /** The stages in order (from `routeFromPlan`). */
  route: RouteHop[]
  /** Prompt token ids, BOS included. */
  promptTokens: number[]
  maxTokens: number
  sampling?: SamplingParams
  /** Sampled ids that end generation (not included). @default the model's stopIds */
  stopIds?: number[]
  /** Called with each generated token (and awaited); returning `'stop'` ends generation there (finish reason `stop`). */
  onToken?: (id: number) => void | 'stop' | Promise<void | 'stop'>
  signal?: AbortSignal
  /** Resume on another route after a lost hop. Without it a failure ends the session at once (level `none`). */
  repair?: Repair
  /** Labels recovery events. @default { level: repair ? 'medium' : 'none', recovery: 'failover' } */
  faultTolerance?: FaultTolerance
  /** Called with every recovery of this session. */
  onRecovery?: (e: RecoveryEvent) => void
  /** Called when the session opens and whenever it moves: its id and route now (level critical asks its stages for digests). */
  onRoute?: (session: string, route: RouteHop[]) => void
  /**
   * Awaited before the session opens on a route, and before a recovery moves it to one (with
   * the new route): an encoder–decoder head hands the encoder memory to the decoder stages here.
   */
  beforeOpen?: (session: string, route: RouteHop[]) => Promise<void>
}

export interface PipelineGenerateResult {
  tokens: number[]
  finishReason: FinishReason
  timings: Timings
  /** Recoveries this session went through. */
  recoveries: RecoveryEvent[]
}

/**
 * A session in progress at the head: the step whose token it awaits (with `resolve`/`reject`
 * while it does), and an error that arrived while it was not awaiting one (between steps,
 * while prompt chunks were going out, during a recovery), raised at its next step.
 */
interface Waiter {
  step: number
  route: RouteHop[]
  resolve?: (t: number) => void
  reject?: (e: Error) => void
  failed?: Error
  /** Answers to a reroute in progress, by hop. */
  acks?: { want: Set<number>, done: () => void, fail: (e: Error) => void }
}

/** One session's place in the generation: route, id and what was sent. */
interface Ctx {
  id: Uint8Array
  hex: string
  waiter: Waiter
  route: RouteHop[]
  /** Prompt and emitted tokens. */
  known: number[]
  /** Positions below this are held by every stage of the route. */
  from: number
  step: number
  /** A lost hop would be recovered (the session has a repair and a level above none). */
  recoverable: boolean
  beforeOpen?: PipelineGenerateInit['beforeOpen']
}

const last = (route: RouteHop[]): string => route[route.length - 1].peerId

/**
 * The head: opens a session along a route, sends the prompt (prefill) and then one token per
 * step, and streams the sampled tokens to the caller. Any number of sessions run at once;
 * each waits only for its own tokens, so several are in flight and the stages overlap.
 * When a hop is lost (its connection closes, the mesh finds it suspect or dead, a stage
 * reports it unreachable) the session's `repair` picks a new route and the session resumes
 * with exactly the tokens it would have given: replayed into the replacement from the
 * upstream output log, or re-prefilled on the new route.
 */
export class SessionDriver {
  private readonly init: SessionDriverInit
  private readonly waiters = new Map<string, Waiter>()
  private readonly requests = new Map<string, { resolve: (m: ControlMessage) => void, reject: (e: Error) => void, from: string }>()
  private unlisten: Array<() => void> = []
  /** Moving average of a decode step's time (ms), for the hang watchdog. */
  private stepMs = 0

  constructor (init: SessionDriverInit) {
    this.init = init
  }

  async start (): Promise<void> {
    await this.init.endpoint.start()
    if (this.unlisten.length > 0) return
    this.unlisten.push(this.init.endpoint.onMessage(msg => { this.receive(msg) }))
    this.unlisten.push(this.init.endpoint.onPeerLost((peer, at) => { this.hopLost(peer, 'CONNECTION', `the connection to ${peer} closed`, at) }))
  }

  async stop (): Promise<void> {
    for (const off of this.unlisten) off()
    this.unlisten = []
    for (const w of this.waiters.values()) this.fail(w, new StageFailedError('STOPPED', 'the session driver stopped', ''))
    this.waiters.clear()
    for (const r of this.requests.values()) r.reject(new StageFailedError('STOPPED', 'the session driver stopped', ''))
    this.requests.clear()
  }

  /** Sessions in progress. */
  get active (): number { return this.waiters.size }

  /** Fail every session whose route goes through `peerId` (membership saw it suspect or dead, or its connection closed). */
  hopLost (peerId: string, cls: 'CONNECTION' | 'CRASH' | 'TIMEOUT', message: string, at = performance.now()): void {
    for (const w of this.waiters.values()) {
      if (w.route.some(h => h.peerId === peerId)) this.fail(w, new HopLostError(peerId, cls, message, at))
    }
    for (const [id, r] of this.requests) {
      if (r.from === peerId) { this.requests.delete(id); r.reject(new HopLostError(peerId, cls, message, at)) }
    }
  }

  private fail (w: Waiter, err: Error): void {
    if (w.acks !== undefined) { w.acks.fail(err); return }
    if (w.reject !== undefined) w.reject(err)
    else w.failed ??= err
  }

  private receive (msg: Inbound): void {
    const { endpoint } = this.init
    if ('control' in msg) {
      const c = msg.control
      const r = this.requests.get(c.session)
      const d = c.type === 'digested' || c.type === 'error' ? this.requests.get(`${c.session}/${msg.from}`) : undefined
      if (d !== undefined) {
        this.requests.delete(`${c.session}/${msg.from}`)
        if (c.type === 'error') d.reject(new StageFailedError(c.code, c.message, msg.from, c.blame))
        else d.resolve(c)
        return
      }
      if (r !== undefined && r.from === msg.from && (c.type === 'prepared' || c.type === 'error')) {
        this.requests.delete(c.session)
        if (c.type === 'prepared') r.resolve(c)
        else r.reject(new StageFailedError(c.code, c.message, msg.from, c.blame))
        return
      }
      if (c.type !== 'error' && c.type !== 'rerouted') return
      const w = this.waiters.get(c.session)
      if (w === undefined || !w.route.some(h => h.peerId === msg.from)) { endpoint.reject('UNKNOWN_SESSION'); return }
      if (c.type === 'rerouted') {
        if (w.acks !== undefined && w.route[c.hop]?.peerId === msg.from) {
          w.acks.want.delete(c.hop)
          if (w.acks.want.size === 0) w.acks.done()
        }
        return
      }
      this.fail(w, new StageFailedError(c.code, c.message, msg.from, c.blame))
      return
    }
    if (msg.frame.kind !== 'sampled') return
    const w = this.waiters.get(sessionHex(msg.frame.session))
    if (w === undefined) { endpoint.reject('UNKNOWN_SESSION'); return }
    if (last(w.route) !== msg.from || msg.frame.step !== w.step) { endpoint.reject('WRONG_SENDER'); return }
    try {
      const [token] = frameTokens(msg.frame, this.init.config.vocabSize)
      w.resolve?.(token)
    } catch (err) {
      endpoint.reject((err as { code?: string }).code ?? 'BAD_SHAPE')
      w.reject?.(err as Error)
    }
  }

  /**
   * Ask `peer` to serve `layers` (loading them if it does not hold them) and wait until it
   * does: what a replacement confirms before a session is moved onto it. Resolves with the
   * backend and activation dtype it computes with (the exactness guard compares them).
   */
  async prepare (peer: RouteHop, model: string, options: { signal?: AbortSignal, timeoutMs?: number } = {}): Promise<{ backend: string, activations: string }> {
    if (this.unlisten.length === 0) await this.start()
    const id = sessionHex(newSessionId())
    const signal = AbortSignal.any([AbortSignal.timeout(options.timeoutMs ?? ACK_TIMEOUT_MS), ...(options.signal === undefined ? [] : [options.signal])])
    const reply = new Promise<ControlMessage>((resolve, reject) => {
      this.requests.set(id, { resolve, reject, from: peer.peerId })
      signal.addEventListener('abort', () => { this.requests.delete(id); reject(signal.reason as Error) }, { once: true })
    })
    reply.catch(() => {})
    await this.init.endpoint.send(peer, encodeControl({ type: 'prepare', session: id, model, ...spanOf(peer) }), { signal })
    const m = await reply as Extract<ControlMessage, { type: 'prepared' }>
    return { backend: m.backend, activations: m.activations }
  }

  /** The digest of what `peer` sent for `session` at positions `<= position` (see the `digest` control message). */
  async digest (peer: RouteHop, session: string, position: number, options: { signal?: AbortSignal } = {}): Promise<string> {
    const key = `${session}/${peer.peerId}`
    const signal = AbortSignal.any([AbortSignal.timeout(ACK_TIMEOUT_MS), ...(options.signal === undefined ? [] : [options.signal])])
    const reply = new Promise<ControlMessage>((resolve, reject) => {
      this.requests.set(key, { resolve, reject, from: peer.peerId })
      signal.addEventListener('abort', () => { this.requests.delete(key); reject(signal.reason as Error) }, { once: true })
    })
    reply.catch(() => {})
    await this.init.endpoint.send(peer, encodeControl({ type: 'digest', session, position }), { signal })
    return (await reply as Extract<ControlMessage, { type: 'digested' }>).digest
  }

  async generate (req: PipelineGenerateInit): Promise<PipelineGenerateResult> {
    if (this.unlisten.length === 0) await this.start()
    const { config } = this.init
    const { promptTokens, signal } = req
    if (promptTokens.length === 0) throw new StageInputError('the prompt has no tokens (not even BOS)')
    if (promptTokens.length >= config.contextLength) throw new ContextLengthError(`the prompt is ${promptTokens.length} tokens; the model's context is ${config.contextLength}, which leaves no room to generate`)
    signal?.throwIfAborted()
    const s = req.sampling ?? {}
    const sampling: ControlSampling = { temperature: s.temperature ?? 0, topK: s.topK ?? 0, topP: s.topP ?? 1, seed: s.seed ?? 0 }
    const stop = new Set(req.stopIds ?? config.stopIds)
    const maxTokens = Math.min(req.maxTokens, config.contextLength - promptTokens.length + 1)
    const ft: FaultTolerance = req.faultTolerance ?? { level: req.repair === undefined ? 'none' : 'medium', recovery: 'failover' }
    const tokens: number[] = []
    const recoveries: RecoveryEvent[] = []
    let finishReason: FinishReason = 'length'
    const t0 = performance.now()
    let t1 = t0
    let ctx = await this.openSession(req.route, [...promptTokens], 0, sampling, req.repair !== undefined && ft.level !== 'none', signal, req.beforeOpen)
    req.onRoute?.(ctx.hex, ctx.route)
    /** A recovery waiting for the next token to say how long the session stalled. */
    let stalled: { event: RecoveryEvent, since: number } | undefined
    let advances = 0
    try {
      while (tokens.length < maxTokens) {
        let next: number
        try {
          next = await this.advance(ctx, signal)
        } catch (err) {
          if (signal?.aborted === true) throw err
          const r = await this.recover(ctx, err as Error, req, ft, sampling)
          ctx = r.ctx
          req.onRoute?.(ctx.hex, ctx.route)
          stalled = { event: r.event, since: r.since }
          continue
        }
        advances++
        if (stalled !== undefined) {
          stalled.event.stallMs = Math.round(performance.now() - stalled.since)
          recoveries.push(stalled.event)
          req.onRecovery?.(stalled.event)
          stalled = undefined
        }
        if (tokens.length === 0 && t1 === t0) t1 = performance.now()
        if (stop.has(next)) { finishReason = 'stop'; break }
        tokens.push(next)
        ctx.known.push(next)
        if (await req.onToken?.(next) === 'stop') { finishReason = 'stop'; break }
      }
    } finally {
      this.closeSession(ctx)
    }
    return { tokens, finishReason, recoveries, timings: timings(promptTokens.length, Math.max(0, advances - 1), t0, t1, performance.now()) }
  }

  private async openSession (route: RouteHop[], known: number[], step: number, sampling: ControlSampling, recoverable: boolean, signal?: AbortSignal, beforeOpen?: Ctx['beforeOpen']): Promise<Ctx> {
    const id = newSessionId()
    const hex = sessionHex(id)
    const waiter: Waiter = { step: -1, route }
    this.waiters.set(hex, waiter)
    const ctx: Ctx = { id, hex, waiter, route, known, from: 0, step, recoverable, beforeOpen }
    const { endpoint, config } = this.init
    try {
      await beforeOpen?.(hex, route)
      const open = { type: 'open' as const, session: hex, model: config.name, hop: 0, route, head: endpoint.self(), sampling }
      if (route[0].mirror !== undefined) void endpoint.send(route[0].mirror, encodeControl({ ...open, shadow: true })).catch(() => {})
      await endpoint.send(route[0], encodeControl(open), { signal })
    } catch (err) {
      waiter.failed ??= err as Error // recovered like any failure of the first hop
    }
    return ctx
  }

  /** Close the session on every hop of its route (a hop whose upstream died would never hear it otherwise). */
  private closeSession (ctx: Ctx): void {
    this.waiters.delete(ctx.hex)
    const { endpoint } = this.init
    for (const peer of ctx.route.flatMap(h => h.mirror === undefined ? [h] : [h, h.mirror])) void endpoint.send(peer, encodeControl({ type: 'close', session: ctx.hex })).catch(() => {})
  }

  /** Send the known positions the route does not hold yet (in chunks on a route of several stages) and await the next token. */
  private async advance (ctx: Ctx, signal?: AbortSignal): Promise<number> {
    const w = ctx.waiter
    signal?.throwIfAborted()
    if (w.failed !== undefined) throw w.failed
    const chunk = ctx.route.length > 1 ? Math.max(1, Math.floor(this.init.prefillChunk ?? PREFILL_CHUNK)) : ctx.known.length
    let at = ctx.from
    for (; at + chunk < ctx.known.length; at += chunk) {
      signal?.throwIfAborted()
      if (w.failed !== undefined) throw w.failed
      await this.sendFirst(ctx, this.tokensFrame(ctx, at, ctx.known.slice(at, at + chunk), { partial: true }), signal)
      ctx.step++
    }
    const timeout = AbortSignal.timeout(this.init.stepTimeoutMs ?? STEP_TIMEOUT_MS)
    const sig = signal === undefined ? timeout : AbortSignal.any([signal, timeout])
    const token = new Promise<number>((resolve, reject) => {
      const settle = (): void => { sig.removeEventListener('abort', onAbort); w.resolve = undefined; w.reject = undefined }
      const onAbort = (): void => { settle(); reject(sig.reason as Error) }
      sig.addEventListener('abort', onAbort, { once: true })
      w.step = ctx.step
      w.resolve = t => { settle(); resolve(t) }
      w.reject = e => { settle(); reject(e) }
    })
    token.catch(() => {})
    if (w.failed !== undefined) throw w.failed
    const sent = performance.now()
    await this.sendFirst(ctx, this.tokensFrame(ctx, at, ctx.known.slice(at), {}), sig)
    // not while prefilling (a first pass may be long and block: compilation, warm-up), and only where a lost hop is
    // recovered: connection and membership events cover the rest
    const watchdog = ctx.from > 0 && ctx.recoverable ? this.watch(ctx, sent) : () => {}
    try {
      const t = await token
      // steps (not prefills) set the pace the watchdog expects
      if (ctx.from > 0) this.stepMs = this.stepMs === 0 ? performance.now() - sent : 0.9 * this.stepMs + 0.1 * (performance.now() - sent)
      ctx.step++
      ctx.from = ctx.known.length
      return t
    } finally {
      watchdog()
    }
  }

  /**
   * A hung peer keeps its connections open and is silent: when a step's token is late (well
   * past the usual step time), probe every hop with `prepare` of its own range — a live stage
   * answers at once, even mid-pass — and fail a hop that does not answer two probes of
   * HANG_PROBE_MS in a row. Returns the disarm.
   */
  private watch (ctx: Ctx, since: number): () => void {
    let timer: ReturnType<typeof setTimeout> | undefined
    let done = false
    const arm = (ms: number): void => {
      timer = setTimeout(() => {
        void Promise.all(ctx.route.map(async hop => {
          // two strikes: the first probe of a hop this head has no stream to includes a dial, slow on a loaded machine
          try {
            await this.prepare(hop, this.init.config.name, { timeoutMs: HANG_PROBE_MS })
            return
          } catch {}
          if (done) return
          try {
            await this.prepare(hop, this.init.config.name, { timeoutMs: HANG_PROBE_MS })
          } catch (err) {
            // no answer in time (a dial that hangs counts too: the handshake never completes), or a refusal
            const hung = (err as Error).name === 'TimeoutError' || (err as Error).name === 'AbortError' || /abort/i.test((err as Error).message)
            if (!done) this.hopLost(hop.peerId, hung ? 'TIMEOUT' : 'CONNECTION', `${hop.peerId} did not answer two probes of ${HANG_PROBE_MS} ms (the step had waited ${Math.round(performance.now() - since)} ms): ${(err as Error).message}`)
          }
        })).then(() => { if (!done) arm(ms * 2) })
      }, ms)
    }
    arm(Math.max(HANG_AFTER_MIN_MS, HANG_AFTER_STEPS * this.stepMs))
    return () => { done = true; clearTimeout(timer) }
  }

  /** To the first stage, and to its mirror (a lost mirror costs the session nothing). */
  private async sendFirst (ctx: Ctx, bytes: Uint8Array, signal?: AbortSignal): Promise<void> {
    const mirror = ctx.route[0].mirror
    if (mirror !== undefined) void this.init.endpoint.send(mirror, bytes).catch(() => {})
    await this.init.endpoint.send(ctx.route[0], bytes, { signal })
  }

  private tokensFrame (ctx: Ctx, position: number, tokens: number[], flags: { partial?: boolean, replay?: boolean }): Uint8Array {
    return encodeFrame({ kind: 'tokens', session: ctx.id, step: ctx.step, position, dtype: 'I32', shape: [tokens.length], payload: tokenPayload(tokens), ...flags })
  }

  /**
   * Move a failed session onto a new route: classify the failure, ask `repair` for a route
   * (retrying with exponential backoff and jitter, escalating on each attempt), then replay
   * or re-prefill. Throws RecoveryFailedError when the failure cannot be recovered.
   */
  private async recover (ctx: Ctx, err: Error, req: PipelineGenerateInit, ft: FaultTolerance, sampling: ControlSampling): Promise<{ ctx: Ctx, event: RecoveryEvent, since: number }> {
    const since = err instanceof HopLostError ? err.at : performance.now()
    const { class: cls, peer } = classify(err)
    const event: RecoveryEvent = {
      at: Date.now() - (performance.now() - since), session: ctx.hex, failed: peer === undefined ? [] : [peer], stages: [], class: cls,
      level: ft.level, strategy: ft.recovery, path: 'none', detectionMs: 0, stallMs: 0, tokensReplayed: 0, ok: false
    }
    const giveUp = (code: string, message: string, cause?: Error): never => {
      event.error = message
      event.detectionMs = Math.round(performance.now() - since)
      req.onRecovery?.(event)
      throw new RecoveryFailedError(code, message, cause)
    }
    if (!recoverable(cls)) throw err // the input itself was refused: moving it elsewhere would give the same
    if (req.repair === undefined || ft.level === 'none') giveUp('NO_RECOVERY', `${err.message} (fault tolerance level none: the session ends)`, err)
    event.detectionMs = Math.round(performance.now() - since)
    const lost = new Set(event.failed)
    const before = ctx.route
    const warmPeers = new Set<string>()
    let error = err
    let path: RecoveryDecision['path'] | undefined
    for (let attempt = 0; attempt < MAX_RECOVERY_ATTEMPTS; attempt++) {
      req.signal?.throwIfAborted()
      // a limit refusal backs off before its first try too: the same peer at once would refuse again
      const backoff = cls === 'LIMITED' ? attempt : attempt - 1
      if (backoff >= 0) await new Promise(resolve => setTimeout(resolve, RECOVERY_BACKOFF_MS * 2 ** backoff * (1 + Math.random())))
      try {
        const decision = await req.repair!({ route: ctx.route, lost: [...lost], error, class: cls, attempt, signal: req.signal })
        // a replay that failed for another reason than one more lost peer is retried as a re-prefill, which needs nothing from the old route
        const peerLoss = ['CONNECTION', 'CRASH', 'TIMEOUT'].includes(classify(error).class)
        path = attempt > 0 && path === 'replay' && !peerLoss ? 'reprefill' : decision.path
        const sameRanges = decision.route.length === ctx.route.length && decision.route.every((h, i) => spanKey(h) === spanKey(ctx.route[i]))
        if (path === 'replay' && !sameRanges) path = 'reprefill'
        // hops rebuilt: those whose peer changed since the failure (a half-done earlier attempt is redone) or was lost
        // a mirror promoted in an earlier attempt still holds the session: it stays warm
        for (const i of decision.warm ?? []) warmPeers.add(decision.route[i].peerId)
        const warm = new Set(path === 'replay' ? decision.route.map((h, i) => i).filter(i => warmPeers.has(decision.route[i].peerId)) : [])
        const moved = decision.route.map((_, i) => i).filter(i => path === 'reprefill' || (!warm.has(i) && (decision.route[i].peerId !== before[i]?.peerId || lost.has(before[i]?.peerId ?? ''))))
        event.stages = [...new Set([...moved, ...warm])].sort((a, b) => a - b)
        event.failed = before.map(h => h.peerId).filter(p => lost.has(p))
        event.strategy = decision.strategy
        event.path = path
        if (path === 'replay') await ctx.beforeOpen?.(ctx.hex, decision.route)
        const resumed = path === 'replay'
          ? await this.replay(ctx, decision.route, new Set(moved), sampling, req.signal)
          : await this.reprefill(ctx, decision.route, sampling, req.signal)
        event.tokensReplayed = path === 'reprefill' ? ctx.known.length : moved.length > 0 ? ctx.from : 0
        event.ok = true
        return { ctx: resumed, event, since }
      } catch (e) {
        if (req.signal?.aborted === true) throw e
        error = e as Error
        const c = classify(e)
        // a peer that failed (not one that refused a request) is avoided from now on
        if (c.peer !== undefined && c.peer !== this.init.endpoint.peerId && (c.class === 'CONNECTION' || c.class === 'CRASH' || c.class === 'TIMEOUT' || c.class === 'LIMITED')) lost.add(c.peer)
        if ((e as Error).name === 'RecoveryFailedError') break // the repair says no route can be had
      }
    }
    return giveUp((error as { code?: string }).code ?? 'RECOVERY_FAILED', `could not recover session ${ctx.hex} after ${err.message}: ${error.message}`, error)
  }

  /**
   * Same ranges, some hops replaced: every surviving hop rewinds to the positions all held
   * and takes the new route; the hop before each run of replacements (or this head, for the
   * first stage) replays its output log into it. Then the next frame goes out as usual.
   */
  private async replay (ctx: Ctx, route: RouteHop[], moved: Set<number>, sampling: ControlSampling, signal?: AbortSignal): Promise<Ctx> {
    const { endpoint, config } = this.init
    const w = ctx.waiter
    const position = ctx.from
    const step = ctx.step + 1
    const runEnd = (i: number): number => { let j = i; while (moved.has(j + 1)) j++; return j }
    const survivors = route.map((_, i) => i).filter(i => !moved.has(i))
    w.failed = undefined
    w.route = route
    ctx.route = route
    ctx.step = step
    const acked = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new StageFailedError('TIMEOUT', `no answer to the reroute of session ${ctx.hex} within ${REROUTE_ACK_MS} ms`, '')) }, REROUTE_ACK_MS)
      w.acks = { want: new Set(survivors), done: () => { clearTimeout(timer); resolve() }, fail: e => { clearTimeout(timer); reject(e) } }
      if (survivors.length === 0) w.acks.done()
    })
    acked.catch(() => {})
    try {
      const sends = survivors.map(async i => {
        const replayTo = moved.has(i + 1) ? runEnd(i + 1) : undefined
        await endpoint.send(route[i], encodeControl({ type: 'reroute', session: ctx.hex, hop: i, route, position, step, ...(replayTo === undefined ? {} : { replayTo }) }), { signal })
      })
      if (moved.has(0)) {
        // this head is the upstream of the first stage: its token log is the output log
        sends.push((async () => {
          await endpoint.send(route[0], encodeControl({ type: 'open', session: ctx.hex, model: config.name, hop: 0, route, head: endpoint.self(), sampling, replayTo: runEnd(0), step }), { signal })
          const chunk = Math.max(1, Math.floor(this.init.prefillChunk ?? PREFILL_CHUNK))
          for (let at = 0; at < position; at += chunk) {
            await endpoint.send(route[0], this.tokensFrame(ctx, at, ctx.known.slice(at, Math.min(position, at + chunk)), { replay: true }), { signal })
          }
        })())
      }
      await Promise.all(sends)
      await acked
    } finally {
      w.acks = undefined
    }
    if (w.failed !== undefined) throw w.failed
    return ctx
  }

  /** A new session on `route` with the prompt and every emitted token as its prompt; the old one is closed wherever it lives. */
  private async reprefill (ctx: Ctx, route: RouteHop[], sampling: ControlSampling, signal?: AbortSignal): Promise<Ctx> {
    this.closeSession(ctx)
    const fresh = await this.openSession(route, ctx.known, ctx.step + 1, sampling, ctx.recoverable, signal, ctx.beforeOpen)
    if (fresh.waiter.failed !== undefined) { this.closeSession(fresh); throw fresh.waiter.failed }
    return fresh
  }
}

/** The route of a plan: each stage's primary with its dialable addresses. */
export function routeFromPlan (plan: { stages: Array<{ range: [number, number], units?: [number, number], primary: string }> }, addrsOf: (peerId: string) => string[]): RouteHop[] {
  return plan.stages.map(s => ({ peerId: s.primary, addrs: addrsOf(s.primary), ...spanOf({ layers: s.range, units: s.units }) }))
}
