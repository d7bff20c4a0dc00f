import { ContextLengthError } from '@shardmesh/model'
import { StageInputError, timings } from '@shardmesh/engine'
import { encodeControl, encodeFrame, frameTokens, tokenPayload } from '@shardmesh/protocol'
import type { FinishReason, SamplingParams, Timings } from '@shardmesh/engine'
import type { ModelConfig } from '@shardmesh/model'
import type { RouteHop } from '@shardmesh/protocol'
import { PREFILL_CHUNK, STEP_TIMEOUT_MS } from './constants.ts'
import type { Endpoint, Inbound } from './endpoint.ts'
import { StageFailedError } from './errors.ts'
import { newSessionId, sessionHex } from './session-id.ts'

export interface SessionDriverInit {
  endpoint: Endpoint
  config: ModelConfig
  /** Longest wait for one step's token. @default STEP_TIMEOUT_MS */
  stepTimeoutMs?: number
  /**
   * Prompt positions per frame when the route has several stages: the first stage starts on
   * the next chunk while the later ones work on this one. @default PREFILL_CHUNK
   */
  prefillChunk?: number
}

export interface PipelineGenerateInit {
  /** The stages in order (from `routeFromPlan`). */
  route: RouteHop[]
  /** Prompt token ids, BOS included. */
  promptTokens: number[]
  maxTokens: number
  sampling?: SamplingParams
  /** Sampled ids that end generation (not included). @default the model's stopIds */
  stopIds?: number[]
  /** Called with each generated token; returning `'stop'` ends generation there (finish reason `stop`). */
  onToken?: (id: number) => void | 'stop'
  signal?: AbortSignal
}

export interface PipelineGenerateResult {
  tokens: number[]
  finishReason: FinishReason
  timings: Timings
}

/**
 * A session in progress at the head: the step whose token it awaits (with `resolve`/`reject`
 * while it does), and an error a stage reported while it was not awaiting one (between steps,
 * or while prompt chunks were going out), raised at its next step.
 */
interface Waiter { step: number, last: string, route: Set<string>, resolve?: (t: number) => void, reject?: (e: Error) => void, failed?: Error }

/**
 * The head: opens a session along a route, sends the prompt (prefill) and then one token per
 * step, and streams the sampled tokens to the caller. Any number of sessions run at once;
 * each waits only for its own tokens, so several are in flight and the stages overlap.
 */
export class SessionDriver {
  private readonly init: SessionDriverInit
  private readonly waiters = new Map<string, Waiter>()
  private unlisten: (() => void) | undefined

  constructor (init: SessionDriverInit) {
    this.init = init
  }

  async start (): Promise<void> {
    await this.init.endpoint.start()
    this.unlisten ??= this.init.endpoint.onMessage(msg => { this.receive(msg) })
  }

  async stop (): Promise<void> {
    this.unlisten?.()
    this.unlisten = undefined
    for (const w of this.waiters.values()) {
      const err = new StageFailedError('STOPPED', 'the session driver stopped', '')
      if (w.reject !== undefined) w.reject(err)
      else w.failed ??= err
    }
    this.waiters.clear()
  }

  /** Sessions in progress. */
  get active (): number { return this.waiters.size }

  private receive (msg: Inbound): void {
    if ('control' in msg) {
      if (msg.control.type !== 'error') return
      const w = this.waiters.get(msg.control.session)
      if (w === undefined || !w.route.has(msg.from)) { this.init.endpoint.reject('UNKNOWN_SESSION'); return }
      const err = new StageFailedError(msg.control.code, msg.control.message, msg.from)
      if (w.reject !== undefined) w.reject(err)
      else w.failed ??= err
      return
    }
    if (msg.frame.kind !== 'sampled') return
    const w = this.waiters.get(sessionHex(msg.frame.session))
    if (w === undefined) { this.init.endpoint.reject('UNKNOWN_SESSION'); return }
    if (w.last !== msg.from || msg.frame.step !== w.step) { this.init.endpoint.reject('WRONG_SENDER'); return }
    try {
      const [token] = frameTokens(msg.frame, this.init.config.vocabSize)
      w.resolve?.(token)
    } catch (err) {
      this.init.endpoint.reject((err as { code?: string }).code ?? 'BAD_SHAPE')
      w.reject?.(err as Error)
    }
  }

  async generate (req: PipelineGenerateInit): Promise<PipelineGenerateResult> {
    if (this.unlisten === undefined) await this.start()
    const { config, endpoint } = this.init
    const { route, promptTokens, signal } = req
    if (promptTokens.length === 0) throw new StageInputError('the prompt has no tokens (not even BOS)')
    if (promptTokens.length >= config.contextLength) throw new ContextLengthError(`the prompt is ${promptTokens.length} tokens; the model's context is ${config.contextLength}, which leaves no room to generate`)
    signal?.throwIfAborted()
    const id = newSessionId()
    const hex = sessionHex(id)
    const s = req.sampling ?? {}
    const stop = new Set(req.stopIds ?? config.stopIds)
    const maxTokens = Math.min(req.maxTokens, config.contextLength - promptTokens.length + 1)
    const first = route[0]
    let step = 0
    const waiter: Waiter = { step: -1, last: route[route.length - 1].peerId, route: new Set(route.map(h => h.peerId)) }
    this.waiters.set(hex, waiter)
    const forward = async (position: number, tokens: number[]): Promise<number> => {
      // the caller may have given up, or a stage failed, between steps (an abort listener added now would never fire)
      signal?.throwIfAborted()
      if (waiter.failed !== undefined) throw waiter.failed
      const timeout = AbortSignal.timeout(this.init.stepTimeoutMs ?? STEP_TIMEOUT_MS)
      const sig = signal === undefined ? timeout : AbortSignal.any([signal, timeout])
      const token = new Promise<number>((resolve, reject) => {
        const settle = (): void => { sig.removeEventListener('abort', onAbort); waiter.resolve = undefined; waiter.reject = undefined }
        const onAbort = (): void => { settle(); reject(sig.reason as Error) }
        sig.addEventListener('abort', onAbort, { once: true })
        waiter.step = step
        waiter.resolve = t => { settle(); resolve(t) }
        waiter.reject = e => { settle(); reject(e) }
      })
      token.catch(() => {})
      await endpoint.send(first, encodeFrame({ kind: 'tokens', session: id, step, position, dtype: 'I32', shape: [tokens.length], payload: tokenPayload(tokens) }), { signal: sig })
      const t = await token
      step++
      return t
    }
    const tokens: number[] = []
    let finishReason: FinishReason = 'length'
    const t0 = performance.now()
    let t1 = t0
    let position = promptTokens.length
    try {
      await endpoint.send(first, encodeControl({
        type: 'open', session: hex, model: config.name, hop: 0, route, head: endpoint.self(),
        sampling: { temperature: s.temperature ?? 0, topK: s.topK ?? 0, topP: s.topP ?? 1, seed: s.seed ?? 0 }
      }), { signal })
      // prefill in chunks so the stages overlap on a long prompt; only the last one is sampled
      const chunk = route.length > 1 ? Math.max(1, Math.floor(this.init.prefillChunk ?? PREFILL_CHUNK)) : promptTokens.length
      let at = 0
      for (; at + chunk < promptTokens.length; at += chunk) {
        signal?.throwIfAborted()
        await endpoint.send(first, encodeFrame({ kind: 'tokens', session: id, step, position: at, dtype: 'I32', shape: [chunk], payload: tokenPayload(promptTokens.slice(at, at + chunk)), partial: true }), { signal })
        step++
      }
      let next = await forward(at, promptTokens.slice(at))
      t1 = performance.now()
      while (tokens.length < maxTokens) {
        if (stop.has(next)) { finishReason = 'stop'; break }
        tokens.push(next)
        if (req.onToken?.(next) === 'stop') { finishReason = 'stop'; break }
        if (tokens.length === maxTokens) break
        next = await forward(position, [next])
        position++
      }
    } finally {
      this.waiters.delete(hex)
      void endpoint.send(first, encodeControl({ type: 'close', session: hex })).catch(() => {})
    }
    return { tokens, finishReason, timings: timings(promptTokens.length, position - promptTokens.length, t0, t1, performance.now()) }
  }
}

/** The route of a plan: each stage's primary with its dialable addresses. */
export function routeFromPlan (plan: { stages: Array<{ range: [number, number], primary: string }> }, addrsOf: (peerId: string) => string[]): RouteHop[] {
  return plan.stages.map(s => ({ peerId: s.primary, addrs: addrsOf(s.primary), layers: s.range }))
}
