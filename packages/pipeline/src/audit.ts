import { lpStream } from '@libp2p/utils'
import { distrusted } from './distrust.ts'
import { numericsOf } from './numerics.ts'
import { BENCH_DECODE, BENCH_MODEL, BENCH_PROMPT, benchModel, benchRun, benchStage } from './throughput.ts'
import type { Distrust } from './distrust.ts'
import type { Connection, Libp2p, Stream } from '@libp2p/interface'
import type { Backend, Stage } from '@shardmesh/engine'
import type { Mesh } from '@shardmesh/mesh'
import { dialTarget } from './dial.ts'

/** The coordinator's throughput audit: a peer runs the join benchmark while the coordinator times it. */
export const AUDIT_PROTOCOL = '/shardmesh/pipeline/audit/1.0.0'
/** A peer fails an audit when it decodes slower than its announced throughput / AUDIT_FACTOR. */
export const AUDIT_FACTOR = 4
/** Failed audits in a row (its claim unchanged) before a peer is distrusted. */
export const AUDIT_STRIKES = 2
/** A peer that passed is audited again after this long. */
export const AUDIT_EVERY_MS = 5 * 60_000
/** A peer that failed once is audited again after this long: long enough for an honest peer to re-measure (`--remeasure`, 30 s). */
export const AUDIT_RETRY_MS = 45_000
/** At the announced speed, an audit decodes for about this long (within the model's context). */
const AUDIT_TARGET_MS = 200
/** Rounds of the decode (each rewinds to the prompt) an audit asks for at most. */
const MAX_ROUNDS = 256
/** Pings before the timed decode; the fastest is the round trip taken off the decode's time. */
const PINGS = 3
const READ_TIMEOUT_MS = 10_000
const MAX_MESSAGE_BYTES = 4096

type AuditMessage =
  | { type: 'prompt', tokens: number[], steps: number, rounds: number }
  | { type: 'ping' } | { type: 'pong' }
  | { type: 'ready' } | { type: 'go' }
  | { type: 'tokens', tokens: number[] }
  | { type: 'error', code: string, message: string }

/** An audit message that is not JSON of a known shape. */
export class InvalidAuditMessageError extends Error {
  name = 'InvalidAuditMessageError'
}

const isTokens = (v: unknown, max: number): v is number[] =>
  Array.isArray(v) && v.length >= 1 && v.length <= max && v.every(t => Number.isInteger(t) && t >= 0 && t < benchModel().config.vocabSize)

/** Parse an audit message's bytes (from the network: every failure is an InvalidAuditMessageError). */
export function parseAuditMessage (bytes: Uint8Array): AuditMessage {
  let v: unknown
  try {
    v = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  } catch (err) {
    throw new InvalidAuditMessageError(`an audit message must be UTF-8 JSON: ${(err as Error).message}`)
  }
  const m = v as Record<string, unknown>
  if (typeof m !== 'object' || m === null || Array.isArray(m)) throw new InvalidAuditMessageError('an audit message must be an object')
  const maxSteps = benchModel().config.contextLength - BENCH_PROMPT
  switch (m.type) {
    case 'ping': case 'pong': case 'ready': case 'go':
      return { type: m.type }
    case 'prompt':
      if (!isTokens(m.tokens, BENCH_PROMPT)) throw new InvalidAuditMessageError(`"tokens" must be 1–${BENCH_PROMPT} token ids of ${BENCH_MODEL}`)
      if (!Number.isInteger(m.steps) || (m.steps as number) < 1 || (m.steps as number) > maxSteps) throw new InvalidAuditMessageError(`"steps" must be an integer in 1–${maxSteps}`)
      if (!Number.isInteger(m.rounds) || (m.rounds as number) < 1 || (m.rounds as number) > MAX_ROUNDS) throw new InvalidAuditMessageError(`"rounds" must be an integer in 1–${MAX_ROUNDS}`)
      return { type: 'prompt', tokens: m.tokens.map(Math.abs), steps: m.steps as number, rounds: m.rounds as number }
    case 'tokens':
      if (!isTokens(m.tokens, maxSteps + 1)) throw new InvalidAuditMessageError(`"tokens" must be 1–${maxSteps + 1} token ids of ${BENCH_MODEL}`)
      return { type: 'tokens', tokens: m.tokens.map(Math.abs) } // -0 is 0
    case 'error':
      if (typeof m.code !== 'string' || typeof m.message !== 'string') throw new InvalidAuditMessageError('"code" and "message" must be strings')
      return { type: 'error', code: m.code.slice(0, 64), message: m.message.slice(0, 512) }
    default:
      throw new InvalidAuditMessageError(`unknown audit message type ${typeof m.type === 'string' ? JSON.stringify(m.type.slice(0, 40)) : typeof m.type}`)
  }
}

/** One audit's outcome, as the coordinator keeps it (and `GET /api/mesh` shows it). */
export interface AuditRecord {
  peer: string
  /** Announced decode tokens/s when audited. */
  claimed: number
  /** Decode tokens/s timed by the coordinator (its round trip taken off); absent when the peer did not answer. */
  measured?: number
  /** Tokens compared with the coordinator's own run (same numerics class only). */
  verified: boolean
  ok: boolean
  strikes: number
  at: number
  why?: string
}

export interface ThroughputAuditInit {
  node: Pick<Libp2p, 'peerId' | 'handle' | 'unhandle' | 'dialProtocol'>
  mesh: Pick<Mesh, 'coordinator' | 'member' | 'members' | 'state'>
  /** What the benchmark computes on, here: answering audits, and the coordinator's reference run. */
  backend: Backend
  distrust: Pick<Distrust, 'report'>
  everyMs?: number
  retryMs?: number
  onError?: (err: Error) => void
}

/**
 * Audits of announced throughput (README "Lying peers"). Every peer answers: it runs the join
 * benchmark on a prompt the auditor chose, and the auditor times the decode from outside. The
 * coordinator audits idle members in turn; one whose decode is slower than its claim /
 * AUDIT_FACTOR in AUDIT_STRIKES audits in a row, or whose tokens differ from the coordinator's
 * own run (same numerics class), is reported to `distrust` as FAILED_AUDIT.
 */
export class ThroughputAudit {
  private readonly init: ThroughputAuditInit
  private readonly records = new Map<string, AuditRecord>()
  private stage: Promise<Stage> | undefined
  private answering = false
  private running: Promise<void> | undefined
  private started = false
  private readonly counts: Record<string, number> = {}

  constructor (init: ThroughputAuditInit) {
    this.init = init
  }

  async start (): Promise<void> {
    if (this.started) return
    await this.init.node.handle(AUDIT_PROTOCOL, (stream: Stream, connection: Connection) => { void this.answer(stream, connection.remotePeer.toString()) })
    this.started = true
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    await this.init.node.unhandle(AUDIT_PROTOCOL).catch(() => {})
    await this.running
    const stage = this.stage
    this.stage = undefined
    await (await stage?.catch(() => undefined))?.close()
  }

  /** The latest audit of each peer. */
  audits (): AuditRecord[] { return [...this.records.values()] }

  /** Audit requests refused here, by reason. */
  rejections (): Record<string, number> { return { ...this.counts } }

  /** As coordinator: start the next due audit unless one runs. */
  tick (now = Date.now()): void {
    if (!this.started || this.running !== undefined) return
    const { mesh } = this.init
    const self = this.init.node.peerId.toString()
    if (mesh.coordinator().peerId !== self) return
    const distrust = distrusted(mesh.state(), now)
    const due = mesh.members().find(m => {
      const claim = m.capabilities?.throughput
      if (m.peerId === self || m.status !== 'alive' || (m.load ?? 0) > 0 || distrust.has(m.peerId)) return false
      if (claim === undefined || claim.model !== BENCH_MODEL || !(claim.decodeTokensPerSecond > 0)) return false
      const r = this.records.get(m.peerId)
      if (r === undefined || r.claimed !== claim.decodeTokensPerSecond) return true
      return now - r.at >= (r.strikes > 0 ? this.init.retryMs ?? AUDIT_RETRY_MS : this.init.everyMs ?? AUDIT_EVERY_MS)
    })
    if (due === undefined) return
    this.running = this.audit(due.peerId, due.capabilities!.throughput!.decodeTokensPerSecond)
      .catch(err => { this.init.onError?.(err as Error) })
      .finally(() => { this.running = undefined })
  }

  private async reference (): Promise<Stage> {
    this.stage ??= benchStage(this.init.backend)
    return await this.stage
  }

  private async audit (peer: string, claimed: number): Promise<void> {
    const { mesh, node } = this.init
    const config = benchModel().config
    // the join benchmark's decode (same positions: a step's cost grows with its position),
    // in rounds for about AUDIT_TARGET_MS at the claimed speed, so fixed costs (a message, a
    // turn of the event loop) stay small beside it
    const steps = BENCH_DECODE
    const rounds = Math.max(1, Math.min(MAX_ROUNDS, Math.round(claimed * AUDIT_TARGET_MS / 1000 / steps)))
    const prompt = Array.from({ length: BENCH_PROMPT }, () => 1 + Math.floor(Math.random() * (config.vocabSize - 1)))
    const previous = this.records.get(peer)
    const strikes = previous !== undefined && previous.claimed === claimed ? previous.strikes : 0
    const record: AuditRecord = { peer, claimed, verified: false, ok: true, strikes, at: Date.now() }
    this.records.set(peer, record)
    let answer: { tokens: number[], ms: number }
    try {
      answer = await this.ask(peer, prompt, steps, rounds)
    } catch (err) {
      // not answering is not proof of a lie (an older peer, a lost connection): noted, no strike
      record.why = `did not answer: ${(err as Error).message}`
      return
    }
    record.measured = Math.round(steps * rounds / (Math.max(answer.ms, 0.01) / 1000) * 10) / 10
    const self = mesh.member(node.peerId.toString())?.capabilities?.backend
    const theirs = mesh.member(peer)?.capabilities?.backend
    let wrong = answer.tokens.length !== steps + 1
    if (!wrong && self !== undefined && theirs !== undefined && numericsOf(self) === numericsOf(theirs)) {
      const expected = await benchRun(await this.reference(), prompt, steps)
      record.verified = true
      wrong = expected.tokens.some((t, i) => t !== answer.tokens[i])
    }
    if (wrong) {
      record.ok = false
      record.why = `answered the benchmark with wrong tokens (${answer.tokens.length} of ${steps + 1} expected)`
    } else if (record.measured < claimed / AUDIT_FACTOR) {
      record.ok = false
      record.strikes = strikes + 1
      record.why = `announced ${claimed} tok/s, decoded at ${record.measured} tok/s (below 1/${AUDIT_FACTOR}; strike ${record.strikes} of ${AUDIT_STRIKES})`
    } else {
      record.strikes = 0
    }
    if (wrong || record.strikes >= AUDIT_STRIKES) await this.init.distrust.report(peer, 'FAILED_AUDIT', record.why!)
  }

  /** Dial `peer`, have it prefill `prompt`, take its round trip, then time its `rounds` decodes of `steps`. */
  private async ask (peer: string, prompt: number[], steps: number, rounds: number): Promise<{ tokens: number[], ms: number }> {
    const { mesh, node } = this.init
    const signal = AbortSignal.timeout(READ_TIMEOUT_MS * 3)
    const addrs = mesh.member(peer)?.addrs ?? []
    const target = dialTarget(peer, addrs)
    const stream = await node.dialProtocol(target, AUDIT_PROTOCOL, { signal })
    const lp = lpStream(stream, { maxDataLength: MAX_MESSAGE_BYTES })
    const send = async (m: AuditMessage): Promise<void> => { await lp.write(new TextEncoder().encode(JSON.stringify(m)), { signal }) }
    const expect = async <T extends AuditMessage['type']>(type: T): Promise<Extract<AuditMessage, { type: T }>> => {
      const m = parseAuditMessage((await lp.read({ signal: AbortSignal.any([signal, AbortSignal.timeout(READ_TIMEOUT_MS)]) })).slice())
      if (m.type === 'error') throw new Error(`${m.code}: ${m.message}`)
      if (m.type !== type) throw new InvalidAuditMessageError(`expected ${type}, got ${m.type}`)
      return m as Extract<AuditMessage, { type: T }>
    }
    try {
      await send({ type: 'prompt', tokens: prompt, steps, rounds })
      await expect('ready')
      let rtt = Infinity
      for (let i = 0; i < PINGS; i++) {
        const t0 = performance.now()
        await send({ type: 'ping' })
        await expect('pong')
        rtt = Math.min(rtt, performance.now() - t0)
      }
      const t0 = performance.now()
      await send({ type: 'go' })
      const { tokens } = await expect('tokens')
      const ms = performance.now() - t0 - rtt
      await stream.close({ signal }).catch(() => {})
      return { tokens, ms }
    } catch (err) {
      stream.abort(err as Error)
      throw err
    }
  }

  /** Answer an auditor: one audit at a time, from members only. */
  private async answer (stream: Stream, from: string): Promise<void> {
    const lp = lpStream(stream, { maxDataLength: MAX_MESSAGE_BYTES })
    const read = async (): Promise<AuditMessage> => parseAuditMessage((await lp.read({ signal: AbortSignal.timeout(READ_TIMEOUT_MS) })).slice())
    const send = async (m: AuditMessage): Promise<void> => { await lp.write(new TextEncoder().encode(JSON.stringify(m)), { signal: AbortSignal.timeout(READ_TIMEOUT_MS) }) }
    if (this.init.mesh.member(from) === undefined) { this.count('NOT_MEMBER'); stream.abort(new Error('not a member')); return }
    if (this.answering) {
      this.count('BUSY')
      await send({ type: 'error', code: 'BUSY', message: 'an audit is running' }).catch(() => {})
      await stream.close().catch(() => {})
      return
    }
    this.answering = true
    try {
      const first = await read()
      if (first.type !== 'prompt') throw new InvalidAuditMessageError(`expected prompt, got ${first.type}`)
      const ready = async (): Promise<void> => {
        await send({ type: 'ready' })
        for (;;) {
          const m = await read()
          if (m.type === 'go') return
          if (m.type !== 'ping') throw new InvalidAuditMessageError(`expected ping or go, got ${m.type}`)
          await send({ type: 'pong' })
        }
      }
      const run = await benchRun(await this.reference(), first.tokens, first.steps, { rounds: first.rounds, ready })
      await send({ type: 'tokens', tokens: run.tokens })
      await stream.close().catch(() => {})
    } catch (err) {
      this.count((err as Error).name)
      stream.abort(err as Error)
    } finally {
      this.answering = false
    }
  }

  private count (why: string): void { this.counts[why] = (this.counts[why] ?? 0) + 1 }
}
