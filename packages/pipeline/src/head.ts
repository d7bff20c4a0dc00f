import type { Mesh } from '@shardmesh/mesh'
import type { ModelConfig, Tokenizer } from '@shardmesh/model'
import type { RouteHop } from '@shardmesh/protocol'
import { SessionDriver, routeFromPlan } from './driver.ts'
import type { PipelineGenerateInit, PipelineGenerateResult } from './driver.ts'
import type { Endpoint } from './endpoint.ts'
import { ApiError } from './openai/errors.ts'
import type { ServedModel } from './openai/handlers.ts'
import { currentPlan } from './plan-state.ts'
import type { Plan } from './plan-types.ts'

/** Wait between readiness checks (and before retrying a session no token came out of). */
const READY_POLL_MS = 200
/** Failures of a session's opening that mean "not serving yet": retried within the ready wait. */
const RETRYABLE = new Set(['NOT_SERVING', 'StageUnreachableError', 'STOPPED'])

export interface HeadInit {
  endpoint: Endpoint
  mesh: Pick<Mesh, 'state' | 'member'>
  config: ModelConfig
  tokenizer: Tokenizer
  readyTimeoutMs: number
}

/**
 * A stage is taken as serving once its primary announces holding the range (a peer announces
 * after `serve()` resolved), or is this peer.
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
  private readonly init: HeadInit

  constructor (init: HeadInit) {
    this.init = init
    this.driver = new SessionDriver({ endpoint: init.endpoint, config: init.config })
  }

  get active (): number { return this.driver.active }

  async start (): Promise<void> { await this.driver.start() }
  async stop (): Promise<void> { await this.driver.stop() }

  /** The current plan and its route once every stage serves; 503 after `readyTimeoutMs`. */
  async route (options: { signal?: AbortSignal, deadline?: number } = {}): Promise<{ plan: Plan, route: RouteHop[] }> {
    const deadline = options.deadline ?? Date.now() + this.init.readyTimeoutMs
    const self = this.init.endpoint.peerId
    for (;;) {
      options.signal?.throwIfAborted()
      const plan = currentPlan(this.init.mesh.state())
      if (plan !== undefined && planReady(plan, this.init.mesh, self)) {
        const addrsOf = (id: string): string[] => id === self ? this.init.endpoint.self().addrs : this.init.mesh.member(id)?.addrs ?? []
        return { plan, route: routeFromPlan(plan, addrsOf) }
      }
      if (Date.now() >= deadline) {
        throw new ApiError(503, plan === undefined ? 'the mesh has no plan yet (no compute peer has joined?)' : `the plan v${plan.version} is not serving yet on every stage`, { type: 'server_error', code: 'pipeline_not_ready' })
      }
      await new Promise(resolve => setTimeout(resolve, READY_POLL_MS))
    }
  }

  /** One generation along the current plan; a session that fails before its first token is retried until the ready deadline. */
  async generate (req: Omit<PipelineGenerateInit, 'route'>): Promise<PipelineGenerateResult & { plan: Plan }> {
    const deadline = Date.now() + this.init.readyTimeoutMs
    for (;;) {
      const { plan, route } = await this.route({ signal: req.signal, deadline })
      let emitted = false
      try {
        const onToken = (id: number): void | 'stop' => { emitted = true; return req.onToken?.(id) }
        return { ...await this.driver.generate({ ...req, route, onToken }), plan }
      } catch (err) {
        const e = err as Error & { code?: string }
        if (emitted || Date.now() >= deadline || !(RETRYABLE.has(e.code ?? '') || RETRYABLE.has(e.name))) throw err
        await new Promise(resolve => setTimeout(resolve, READY_POLL_MS))
      }
    }
  }

  served (): ServedModel {
    return { id: this.init.config.name, config: this.init.config, tokenizer: this.init.tokenizer, generate: async r => await this.generate(r) }
  }
}
