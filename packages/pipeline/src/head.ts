import type { Mesh } from '@shardmesh/mesh'
import { CircuitBreaker } from './circuit-breaker.ts'
import type { FaultTolerance, RecoveryEvent, RecoveryLog } from './fault-tolerance.ts'
import { meshRepair, withMirrors } from './repair.ts'
import { CRITICAL_REPLICAS, generateCritical } from './critical.ts'
import type { ModelConfig, Tokenizer } from '@shardmesh/model'
import type { RouteHop } from '@shardmesh/protocol'
import { SessionDriver, routeFromPlan } from './driver.ts'
import type { PipelineGenerateInit, PipelineGenerateResult } from './driver.ts'
import type { Endpoint } from './endpoint.ts'
import { ApiError } from './openai/errors.ts'
import type { ServedModel } from './openai/handlers.ts'
import { currentPlan } from './plan-state.ts'
import type { Plan } from './plan-types.ts'
import type { DistrustReason } from './distrust.ts'
import { LIAR_CODES } from './verify.ts'
import { spanOf } from './span.ts'

/** Wait between readiness checks (and before retrying a session no token came out of). */
const READY_POLL_MS = 200
/** Longest wait for a primary's answer that it serves its range, per readiness check. */
const READY_PROBE_MS = 2000
/** Failures of a session's opening that mean "not serving (this range) yet" — the plan moved on under it: retried within the ready wait. */
const RETRYABLE = new Set(['NOT_SERVING', 'JOINING', 'WRONG_STAGE', 'StageUnreachableError', 'STOPPED', 'TimeoutError', 'not_enough_replicas'])

export interface HeadInit {
  endpoint: Endpoint
  mesh: Pick<Mesh, 'state' | 'member' | 'members' | 'addEventListener' | 'removeEventListener'>
  config: ModelConfig
  tokenizer: Tokenizer
  readyTimeoutMs: number
  /** Level and strategy of sessions that do not name their own. */
  faultTolerance: FaultTolerance
  /** Where recoveries are recorded. */
  recoveries: RecoveryLog
  /** Tell the coordinator a peer failed to serve what it claims (`Distrust.report`). @default local breaker only */
  report?: (peer: string, reason: DistrustReason, detail: string) => void
}

/**
 * A plan may serve once every primary is alive and announces holding its range (a peer
 * announces after `serve()` resolved), or is this peer; `Head.route` then asks each to
 * confirm it serves.
 */
export function planReady (plan: Plan, mesh: Pick<Mesh, 'member'>, self: string): boolean {
  return plan.stages.every(s => {
    if (s.primary === self) return true
    const m = mesh.member(s.primary)
    return m !== undefined && m.status === 'alive' && m.layers.some(([a, b]) => a <= s.range[0] && b >= s.range[1])
  })
}

/** The head: a session driver whose route is the current plan's, for the OpenAI handler. */
export class Head {
  readonly driver: SessionDriver
  readonly breaker = new CircuitBreaker()
  /** The plan version whose primaries all answered `prepare`. */
  private readyVersion = -1
  private readonly init: HeadInit
  /** Membership's word on a peer of a running session: suspect (a hang) or dead fails its hop at once. */
  private readonly onMember = (e: CustomEvent<{ peerId: string, status: string, reason?: string }>): void => {
    const { peerId, status } = e.detail
    if (status === 'dead') this.driver.hopLost(peerId, 'CRASH', `the mesh found ${peerId} dead (${e.detail.reason ?? 'silent'})`)
    else if (status === 'suspect') this.driver.hopLost(peerId, e.detail.reason === 'disconnected' ? 'CONNECTION' : 'TIMEOUT', `the mesh suspects ${peerId} (${e.detail.reason ?? 'silent'})`)
  }

  constructor (init: HeadInit) {
    this.init = init
    this.driver = new SessionDriver({ endpoint: init.endpoint, config: init.config })
  }

  get active (): number { return this.driver.active }

  async start (): Promise<void> {
    await this.driver.start()
    this.init.mesh.addEventListener('member', this.onMember as unknown as EventListener)
  }

  async stop (): Promise<void> {
    this.init.mesh.removeEventListener('member', this.onMember as unknown as EventListener)
    await this.driver.stop()
  }

  /**
   * `driver.prepare`, and a refusal of the range by a peer that announces it holds the range is
   * reported to the coordinator (it claims layers it does not serve).
   */
  async prepare (hop: RouteHop, model: string, options: { signal?: AbortSignal, timeoutMs?: number } = {}): Promise<{ backend: string, activations: string }> {
    try {
      return await this.driver.prepare(hop, model, options)
    } catch (err) {
      this.checkClaim(hop.peerId, hop.layers, err)
      throw err
    }
  }

  /** Report `peer` when `err` is its refusal of `layers` while it announces holding them. */
  private checkClaim (peer: string, layers: [number, number], err: unknown): void {
    const e = err as { name?: string, code?: string, peerId?: string }
    if (e.name !== 'StageFailedError' || !LIAR_CODES.has(e.code ?? '') || e.peerId !== peer) return
    const claims = this.init.mesh.member(peer)?.layers.some(([a, b]) => a <= layers[0] && b >= layers[1]) ?? false
    if (!claims) return
    for (let i = 0; i < 3; i++) this.breaker.failure(peer) // no route here uses it until its cooldown, whatever the coordinator does
    this.init.report?.(peer, 'CLAIMED_LAYERS', `announces layers covering [${layers.join(', ')}] and refused them: ${e.code ?? ''}`)
  }

  private addrsOf (id: string): string[] {
    return id === this.init.endpoint.peerId ? this.init.endpoint.self().addrs : this.init.mesh.member(id)?.addrs ?? []
  }

  /**
   * Whether every primary of the plan serves its range: each answered `prepare` for this plan
   * version (a peer answers once the range is loaded, so readiness is what a peer serves, not
   * what it holds). Remembered per plan version.
   */
  private async serving (plan: Plan, route: RouteHop[], signal?: AbortSignal): Promise<boolean> {
    if (this.readyVersion === plan.version) return true
    try {
      await Promise.all(route.map(async h => await this.prepare(h, this.init.config.name, { signal, timeoutMs: READY_PROBE_MS })))
    } catch (err) {
      if (signal?.aborted === true) throw err
      return false
    }
    this.readyVersion = plan.version
    return true
  }

  /** The current plan and its route once every stage serves; 503 after `readyTimeoutMs`. */
  async route (options: { signal?: AbortSignal, deadline?: number } = {}): Promise<{ plan: Plan, route: RouteHop[] }> {
    const deadline = options.deadline ?? Date.now() + this.init.readyTimeoutMs
    const self = this.init.endpoint.peerId
    for (;;) {
      options.signal?.throwIfAborted()
      const plan = currentPlan(this.init.mesh.state())
      if (plan !== undefined && planReady(plan, this.init.mesh, self)) {
        const route = routeFromPlan(plan, id => this.addrsOf(id))
        if (await this.serving(plan, route, options.signal)) return { plan, route }
      }
      if (Date.now() >= deadline) {
        throw new ApiError(503, plan === undefined ? 'the mesh has no plan yet (no compute peer has joined?)' : `the plan v${plan.version} is not serving yet on every stage`, { type: 'server_error', code: 'pipeline_not_ready' })
      }
      await new Promise(resolve => setTimeout(resolve, READY_POLL_MS))
    }
  }

  /**
   * One generation along the current plan, recovered on a lost hop as its fault tolerance
   * says (the request's, else the head's); a session whose stages were not serving yet is
   * retried until the ready deadline.
   */
  async generate (req: Omit<PipelineGenerateInit, 'route' | 'faultTolerance'> & { faultTolerance?: Partial<FaultTolerance> }): Promise<PipelineGenerateResult & { plan: Plan }> {
    const deadline = Date.now() + this.init.readyTimeoutMs
    const faultTolerance: FaultTolerance = { ...this.init.faultTolerance, ...req.faultTolerance }
    const repair = faultTolerance.level === 'none'
      ? undefined
      : meshRepair({ driver: this, mesh: this.init.mesh, model: this.init.config.name, self: this.init.endpoint.peerId, faultTolerance, breaker: this.breaker, addrsOf: id => this.addrsOf(id) })
    const onRecovery = (e: RecoveryEvent): void => { this.init.recoveries.record(e); req.onRecovery?.(e) }
    for (;;) {
      const { plan, route } = await this.route({ signal: req.signal, deadline })
      let emitted = false
      try {
        const onToken = async (id: number): Promise<void | 'stop'> => { emitted = true; return await req.onToken?.(id) }
        if (faultTolerance.level === 'critical') {
          const routes = this.replicaRoutes(plan, route)
          // the replicas must serve too, not only the primaries the readiness check asked
          await Promise.all(routes.slice(1).flat().map(async h => await this.prepare(h, this.init.config.name, { signal: req.signal, timeoutMs: READY_PROBE_MS })))
          const onEvict = (peer: string, why: string): void => {
            for (let i = 0; i < 3; i++) this.breaker.failure(peer) // evicted: no route uses it until the breaker's cooldown
            this.init.report?.(peer, 'DIGEST_MISMATCH', why)
            onRecovery({ at: Date.now(), session: '', failed: [peer], stages: [], class: 'PROTOCOL', level: 'critical', strategy: faultTolerance.recovery, path: 'none', detectionMs: 0, stallMs: 0, tokensReplayed: 0, ok: true, error: `evicted ${peer}: ${why}` })
          }
          return { ...await generateCritical(this.driver, { ...req, routes, repairs: routes.map(() => repair), onToken, faultTolerance, onRecovery, onEvict }), plan }
        }
        // level high, parallel: warm standbys are fed the same frames (mirrors) and take over with no replay
        const mirrored = faultTolerance.level === 'high' && (faultTolerance.recovery === 'parallel' || faultTolerance.recovery === 'progressive')
          ? withMirrors(route, plan, this.init.mesh, id => this.addrsOf(id))
          : route
        return { ...await this.driver.generate({ ...req, route: mirrored, onToken, repair, faultTolerance, onRecovery }), plan }
      } catch (err) {
        const e = err as Error & { code?: string, peerId?: string }
        // a session refused at open by a hop that announces its range (it answered prepare, or the readiness was cached)
        const hop = route.find(h => h.peerId === e.peerId)
        if (hop !== undefined) {
          this.checkClaim(hop.peerId, hop.layers, err)
          if (LIAR_CODES.has(e.code ?? '')) this.readyVersion = -1
        }
        if (emitted || Date.now() >= deadline || !(RETRYABLE.has(e.code ?? '') || RETRYABLE.has(e.name))) throw err
        await new Promise(resolve => setTimeout(resolve, READY_POLL_MS))
      }
    }
  }

  /** Level critical: the primaries' route and one route through each stage's first and second standbys. */
  private replicaRoutes (plan: Plan, primaries: RouteHop[]): RouteHop[][] {
    const routes = [primaries]
    for (let r = 0; r < CRITICAL_REPLICAS - 1; r++) {
      const hops = plan.stages.map((s, i) => s.standbys[r] === undefined ? undefined : { peerId: s.standbys[r], addrs: this.addrsOf(s.standbys[r]), ...spanOf(primaries[i]) })
      if (hops.some(h => h === undefined || this.init.mesh.member(h.peerId)?.status !== 'alive')) {
        // retried until the ready deadline: a standby may be rejoining
        const live = Math.min(...plan.stages.map(s => [s.primary, ...s.standbys].filter(p => p === this.init.endpoint.peerId || this.init.mesh.member(p)?.status === 'alive').length))
        throw new ApiError(503, `fault tolerance level critical runs every stage on ${CRITICAL_REPLICAS} live peers; plan v${plan.version} has ${live} for some stage (start the mesh with --ft-level critical and at least ${CRITICAL_REPLICAS} peers per stage)`, { type: 'server_error', code: 'not_enough_replicas' })
      }
      routes.push(hops as RouteHop[])
    }
    return routes
  }

  served (): ServedModel {
    return { id: this.init.config.name, config: this.init.config, tokenizer: this.init.tokenizer, generate: async r => await this.generate(r) }
  }
}
