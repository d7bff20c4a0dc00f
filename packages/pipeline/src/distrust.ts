import { lpStream } from '@libp2p/utils'
import type { Connection, Libp2p, Stream } from '@libp2p/interface'
import type { Mesh } from '@shardmesh/mesh'
import { dialTarget } from './dial.ts'

/** A head's report that a peer failed to serve what it claims, to the coordinator. */
export const DISTRUST_PROTOCOL = '/shardmesh/pipeline/distrust/1.0.0'
/** Replicated-state keys of distrusted peers: `pipeline.distrust/<peerId>` → `DistrustEntry`. */
export const DISTRUST_PREFIX = 'pipeline.distrust/'
/** How long a reported peer gets no stage (then it may be planned again and has to serve to stay). */
export const DISTRUST_MS = 10 * 60_000
/** A head reports one peer at most this often. */
const REPORT_EVERY_MS = 5_000
const MAX_REPORT_BYTES = 2048
const MAX_DETAIL = 512

/**
 * Why a peer is distrusted:
 * - `CLAIMED_LAYERS`: it announced a range and refused to serve it (`prepare`/`open` answered
 *   NOT_SERVING or WRONG_STAGE — an honest stage server loads any range of its model it is asked for);
 * - `DIGEST_MISMATCH`: at level critical its output differed from the two replicas that agree;
 * - `FAILED_AUDIT`: the coordinator timed it decoding far slower than the throughput it
 *   announces, twice in a row, or it answered the audit's benchmark with wrong tokens (audit.ts).
 */
export type DistrustReason = 'CLAIMED_LAYERS' | 'DIGEST_MISMATCH' | 'FAILED_AUDIT'
export const DISTRUST_REASONS: DistrustReason[] = ['CLAIMED_LAYERS', 'DIGEST_MISMATCH', 'FAILED_AUDIT']

export interface DistrustEntry {
  reason: DistrustReason
  detail: string
  /** The head that reported it. */
  by: string
  /** Coordinator's clock (ms since epoch) when recorded, and until when it holds. */
  at: number
  until: number
}

/** A report that is not JSON of the expected shape, or names an unknown reason. */
export class InvalidDistrustReportError extends Error {
  name = 'InvalidDistrustReportError'
}

/** Distrusted peers in a replicated state whose time has not run out at `now`. */
export function distrusted (state: { data: Record<string, unknown> }, now = Date.now()): Map<string, DistrustEntry> {
  const out = new Map<string, DistrustEntry>()
  for (const [key, value] of Object.entries(state.data)) {
    if (!key.startsWith(DISTRUST_PREFIX)) continue
    const e = value as DistrustEntry
    if (typeof e === 'object' && e !== null && typeof e.until === 'number' && e.until > now) out.set(key.slice(DISTRUST_PREFIX.length), e)
  }
  return out
}

/** Keys of entries whose time ran out (the coordinator deletes them). */
export function expiredDistrust (state: { data: Record<string, unknown> }, now = Date.now()): string[] {
  return Object.entries(state.data).filter(([k, v]) => k.startsWith(DISTRUST_PREFIX) && !((v as DistrustEntry)?.until > now)).map(([k]) => k)
}

/** Parse a report's bytes (from the network: every failure is an InvalidDistrustReportError). */
export function parseReport (bytes: Uint8Array): { peer: string, reason: DistrustReason, detail: string } {
  let v: unknown
  try {
    v = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  } catch (err) {
    throw new InvalidDistrustReportError(`a distrust report must be UTF-8 JSON: ${(err as Error).message}`)
  }
  const r = v as Record<string, unknown>
  if (typeof r !== 'object' || r === null || Array.isArray(r)) throw new InvalidDistrustReportError('a distrust report must be an object')
  if (typeof r.peer !== 'string' || r.peer.length === 0 || r.peer.length > 128) throw new InvalidDistrustReportError('"peer" must be a peer id')
  if (!DISTRUST_REASONS.includes(r.reason as DistrustReason)) throw new InvalidDistrustReportError(`"reason" must be one of ${DISTRUST_REASONS.join(', ')}`)
  if (typeof r.detail !== 'string') throw new InvalidDistrustReportError('"detail" must be a string')
  return { peer: r.peer, reason: r.reason as DistrustReason, detail: r.detail.slice(0, MAX_DETAIL) }
}

export interface DistrustInit {
  node: Pick<Libp2p, 'peerId' | 'handle' | 'unhandle' | 'dialProtocol'>
  mesh: Pick<Mesh, 'coordinator' | 'member' | 'state' | 'propose'>
  /** @default DISTRUST_MS */
  distrustMs?: number
  /**
   * The coordinator's own check of another member's report before recording it: false drops
   * the report (counted `UNCONFIRMED`). @default every report is taken on the reporter's word
   */
  verify?: (peer: string, reason: DistrustReason) => Promise<boolean>
  onError?: (err: Error) => void
}

/**
 * Mesh-wide distrust: a head `report`s a peer that failed to serve what it claims; the report
 * goes to the coordinator (over DISTRUST_PROTOCOL, or at once when this peer is coordinator),
 * which records it in the replicated state for `distrustMs` — every peer sees it, a new
 * coordinator inherits it, and the planner gives the peer no stage while it holds. Reports
 * from peers that are not members are refused; with `verify`, the coordinator re-checks a
 * report before recording it (see the README).
 */
export class Distrust {
  private readonly init: DistrustInit
  private readonly reported = new Map<string, number>()
  private readonly counts: Record<string, number> = {}
  private started = false

  constructor (init: DistrustInit) {
    this.init = init
  }

  async start (): Promise<void> {
    if (this.started) return
    await this.init.node.handle(DISTRUST_PROTOCOL, (stream: Stream, connection: Connection) => { void this.receive(stream, connection.remotePeer.toString()) })
    this.started = true
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    await this.init.node.unhandle(DISTRUST_PROTOCOL).catch(() => {})
  }

  /** Reports refused, by reason. */
  rejections (): Record<string, number> { return { ...this.counts } }

  /** Tell the coordinator that `peer` failed to serve what it claims (at most once per REPORT_EVERY_MS per peer). */
  async report (peer: string, reason: DistrustReason, detail: string, options: { signal?: AbortSignal } = {}): Promise<void> {
    const { mesh, node } = this.init
    const self = node.peerId.toString()
    if (peer === self || distrusted(mesh.state()).has(peer)) return
    const last = this.reported.get(peer)
    if (last !== undefined && Date.now() - last < REPORT_EVERY_MS) return
    this.reported.set(peer, Date.now())
    const coordinator = mesh.coordinator().peerId
    if (coordinator === null) return
    if (coordinator === self) { await this.record(peer, reason, detail, self, options); return }
    const signal = options.signal === undefined ? AbortSignal.timeout(5000) : AbortSignal.any([options.signal, AbortSignal.timeout(5000)])
    const addrs = mesh.member(coordinator)?.addrs ?? []
    const target = dialTarget(coordinator, addrs)
    const stream = await node.dialProtocol(target, DISTRUST_PROTOCOL, { signal })
    try {
      await lpStream(stream).write(new TextEncoder().encode(JSON.stringify({ peer, reason, detail: detail.slice(0, MAX_DETAIL) })), { signal })
      await stream.close({ signal })
    } catch (err) {
      stream.abort(err as Error)
      throw err
    }
  }

  private async receive (stream: Stream, from: string): Promise<void> {
    try {
      const bytes = (await lpStream(stream, { maxDataLength: MAX_REPORT_BYTES }).read({ signal: AbortSignal.timeout(5000) })).slice()
      await stream.close().catch(() => {})
      const r = parseReport(bytes)
      if (this.init.mesh.member(from) === undefined) { this.count('NOT_MEMBER'); return }
      if (this.init.mesh.coordinator().role !== 'coordinator') { this.count('NOT_COORDINATOR'); return }
      if (this.init.verify !== undefined && !(await this.init.verify(r.peer, r.reason))) { this.count('UNCONFIRMED'); return }
      await this.record(r.peer, r.reason, r.detail, from, {})
    } catch (err) {
      this.count((err as Error).name)
      stream.abort(err as Error)
      if (!(err instanceof InvalidDistrustReportError)) this.init.onError?.(err as Error)
    }
  }

  private async record (peer: string, reason: DistrustReason, detail: string, by: string, options: { signal?: AbortSignal }): Promise<void> {
    const { mesh } = this.init
    if (distrusted(mesh.state()).has(peer)) return
    const at = Date.now()
    const entry: DistrustEntry = { reason, detail, by, at, until: at + (this.init.distrustMs ?? DISTRUST_MS) }
    await mesh.propose({ op: 'set', key: `${DISTRUST_PREFIX}${peer}`, value: entry }, options)
  }

  private count (why: string): void { this.counts[why] = (this.counts[why] ?? 0) + 1 }
}
