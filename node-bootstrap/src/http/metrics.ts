import type { IncomingMessage, ServerResponse } from 'node:http'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { Mesh } from '@shardmesh/mesh'
import { ApiError, currentPlan } from '@shardmesh/pipeline'
import type { FaultTolerance, RecoveryEvent } from '@shardmesh/pipeline'

/** Stall and detection buckets (ms): warm-standby promotions land low, fetch-and-replay failovers in seconds. */
export const RECOVERY_BUCKETS_MS = [10, 25, 50, 100, 250, 500, 1000, 1500, 2500, 5000, 10_000, 30_000, 60_000]

/** What the metrics read of a head (a `PipelineService` fits). */
export interface RecoverySource {
  faultTolerance: FaultTolerance
  recoveries: () => RecoveryEvent[]
  onRecovery: (fn: (e: RecoveryEvent) => void) => () => void
}

export interface MetricsInit {
  mesh: Pick<Mesh, 'view' | 'state' | 'rejections'>
  /** The head's recoveries (absent on a node without a pipeline). */
  recoveries?: RecoverySource
  /** Sessions this head is driving now. */
  sessionsInFlight?: () => number | Promise<number>
  /** Stage-protocol messages this peer refused, by reason (a pipeline endpoint's `rejections()`). */
  stageRejections?: () => Record<string, number>
  /** Also export prom-client's process metrics (CPU, memory, event loop lag). @default true */
  processMetrics?: boolean
}

export interface Metrics {
  registry: Registry
  /** The exposition text (Prometheus text format 0.0.4). */
  text: () => Promise<string>
  /** `GET /metrics` for the HTTP server's handler list. */
  handler: (req: IncomingMessage, res: ServerResponse) => Promise<boolean>
  stop: () => void
}

/**
 * Prometheus metrics of one process, in a registry of its own (not prom-client's global one, so
 * several nodes in one process never mix): recoveries by class/strategy/path/outcome, their stall
 * and detection times and replayed tokens (one observation per `RecoveryEvent` the head records),
 * and gauges read from the mesh at scrape time.
 */
export function createMetrics (init: MetricsInit): Metrics {
  const registry = new Registry()
  if (init.processMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'shardmesh_' })
  const labelNames = ['class', 'strategy', 'path', 'ok'] as const
  const recoveries = new Counter({ name: 'shardmesh_recoveries_total', help: 'Recoveries of running sessions at this head, by error class, strategy, resume path and outcome', labelNames, registers: [registry] })
  const stall = new Histogram({ name: 'shardmesh_recovery_stall_ms', help: 'From the failure\'s first sign to the next token out of the new route (ms)', labelNames: ['strategy', 'path'], buckets: RECOVERY_BUCKETS_MS, registers: [registry] })
  const detection = new Histogram({ name: 'shardmesh_recovery_detection_ms', help: 'From the failure\'s first sign to the head acting on it (ms)', labelNames: ['class'], buckets: RECOVERY_BUCKETS_MS, registers: [registry] })
  const replayed = new Counter({ name: 'shardmesh_recovery_tokens_replayed_total', help: 'Positions recomputed to resume sessions (replay into the replacement, or re-prefill of the route)', labelNames: ['path'], registers: [registry] })
  const record = (e: RecoveryEvent): void => {
    recoveries.inc({ class: e.class, strategy: e.strategy, path: e.path, ok: String(e.ok) })
    detection.observe({ class: e.class }, e.detectionMs)
    if (e.ok) stall.observe({ strategy: e.strategy, path: e.path }, e.stallMs)
    replayed.inc({ path: e.path }, e.tokensReplayed)
  }
  let off: (() => void) | undefined
  const source = init.recoveries
  if (source !== undefined) {
    off = source.onRecovery(record)
    for (const e of source.recoveries()) record(e)
    const ft = new Gauge({ name: 'shardmesh_fault_tolerance_info', help: 'Fault-tolerance level and recovery strategy of sessions driven here (value 1)', labelNames: ['level', 'recovery'], registers: [registry] })
    ft.set({ level: source.faultTolerance.level, recovery: source.faultTolerance.recovery }, 1)
  }

  const mesh = init.mesh
  new Gauge({
    name: 'shardmesh_members',
    help: 'Members this peer knows, by status',
    labelNames: ['status'],
    registers: [registry],
    collect () {
      this.reset()
      const counts: Record<string, number> = { alive: 0, suspect: 0, dead: 0 }
      for (const p of mesh.view().peers) counts[p.status] = (counts[p.status] ?? 0) + 1
      for (const [status, n] of Object.entries(counts)) this.set({ status }, n)
    }
  })
  new Gauge({ name: 'shardmesh_term', help: 'Current election term', registers: [registry], collect () { this.set(mesh.view().term) } })
  new Gauge({ name: 'shardmesh_coordinator_known', help: '1 while this peer knows a coordinator', registers: [registry], collect () { this.set(mesh.view().coordinator === null ? 0 : 1) } })
  new Gauge({ name: 'shardmesh_state_version', help: 'Version of the replicated state this peer holds', registers: [registry], collect () { this.set(mesh.view().stateVersion) } })
  new Gauge({
    name: 'shardmesh_plan_version',
    help: 'Version of the current plan (0: none yet)',
    registers: [registry],
    collect () { this.set(currentPlan(mesh.state())?.version ?? 0) }
  })
  new Gauge({
    name: 'shardmesh_plan_stages',
    help: 'Stages of the current plan',
    registers: [registry],
    collect () { this.set(currentPlan(mesh.state())?.stages.length ?? 0) }
  })
  new Gauge({
    name: 'shardmesh_mesh_rejected_messages',
    help: 'Messages and operations the mesh refused or that failed, by reason (cumulative since start)',
    labelNames: ['reason'],
    registers: [registry],
    collect () {
      this.reset()
      for (const [reason, n] of Object.entries(mesh.rejections())) this.set({ reason }, n)
    }
  })
  const stageRejections = init.stageRejections
  if (stageRejections !== undefined) {
    new Gauge({
      name: 'shardmesh_stage_rejected_messages',
      help: 'Stage-protocol messages refused, by reason: malformed frames, unknown sessions, and the per-peer limits (TOO_MANY_SESSIONS, RATE_LIMITED, BYTES_IN_FLIGHT; UNANSWERED: refusals not answered) — cumulative since start',
      labelNames: ['reason'],
      registers: [registry],
      collect () {
        this.reset()
        for (const [reason, n] of Object.entries(stageRejections())) this.set({ reason }, n)
      }
    })
  }
  const inFlight = init.sessionsInFlight
  if (inFlight !== undefined) {
    new Gauge({ name: 'shardmesh_sessions_in_flight', help: 'Sessions this head is driving now', registers: [registry], async collect () { this.set(await inFlight()) } })
  }

  const text = async (): Promise<string> => await registry.metrics()
  return {
    registry,
    text,
    handler: async (req, res) => {
      if (new URL(req.url ?? '/', 'http://localhost').pathname !== '/metrics') return false
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        const body = JSON.stringify(new ApiError(405, `${req.method ?? ''} is not allowed on /metrics`, { code: 'method_not_allowed' }).body())
        res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) })
        res.end(body)
        return true
      }
      const body = await text()
      res.writeHead(200, { 'content-type': registry.contentType, 'content-length': Buffer.byteLength(body) })
      res.end(req.method === 'HEAD' ? undefined : body)
      return true
    },
    stop: () => { off?.() }
  }
}
