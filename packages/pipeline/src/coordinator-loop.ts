import type { Member, Mesh } from '@shardmesh/mesh'
import type { LayerManifest } from '@shardmesh/model'
import { partSizes, plan, replan } from './planner.ts'
import { currentPlan, publishPlan } from './plan-state.ts'
import type { Plan, PlanInput, PlanMember, StrategyName } from './plan-types.ts'
import { rebalance } from './rebalance.ts'
import type { FaultTolerance, FtLevel } from './fault-tolerance.ts'
import { CRITICAL_REPLICAS } from './critical.ts'
import { distrusted, expiredDistrust } from './distrust.ts'

/** Least time between two history rebalances of a coordinator (ms). */
export const REBALANCE_MIN_MS = 30_000

/** Key of the served model's settings in the replicated state. */
export const SETTINGS_KEY = 'pipeline.settings'

/** What the coordinator publishes next to the plan: which model, how to plan it. */
export interface PipelineSettings {
  /** Manifest CID of the model. */
  model: string
  strategy: StrategyName
  /** Compute peers to wait for before the first plan (then plan with whoever is alive). */
  minPeers: number
  /** The mesh's fault tolerance: at `high` and above every peer keeps its standby ranges loaded. */
  faultTolerance?: FaultTolerance
}

export function currentSettings (state: { data: Record<string, unknown> }): PipelineSettings | undefined {
  const s = state.data[SETTINGS_KEY] as PipelineSettings | undefined
  if (typeof s !== 'object' || s === null || typeof s.model !== 'string') return undefined
  return s
}

/**
 * Who gets layers: members that are not the bootstrap and not dead (a suspect peer keeps its
 * range: re-planning waits for `dead`, while heads already route running sessions around
 * it); the bootstrap only when no other peer is (so a lone `shardmesh start --model` still
 * serves).
 */
export function planMembers (members: Member[]): { members: PlanMember[], fallback: boolean } {
  const alive = members.filter(m => m.status !== 'dead')
  const compute = alive.filter(m => m.role !== 'bootstrap')
  const chosen = compute.length > 0 ? compute : alive
  return { members: chosen.map(m => ({ peerId: m.peerId, capabilities: m.capabilities })), fallback: compute.length === 0 }
}

/**
 * Stages for `n` members at a fault-tolerance level: `critical` runs every stage on three
 * peers (a third of the members are primaries, two standbys each), `high` keeps a warm
 * standby for every stage (half the members stand by), `medium` keeps one spare peer from three
 * members on (a lost range moves to it instead of waiting for a restart or a re-plan),
 * `low`/`none` use every member.
 */
export function maxStages (level: FtLevel, n: number): number {
  if (level === 'critical') return Math.max(1, Math.floor(n / 3))
  if (level === 'high') return Math.max(1, Math.floor(n / 2))
  if (level === 'medium') return n >= 3 ? n - 1 : n
  return n
}

/** What `nextPlan` plans from. */
export interface NextPlanInput {
  previous: Plan | undefined
  members: Member[]
  manifest: LayerManifest
  settings: PipelineSettings
  waitOver: boolean
  /** Decode speed per peer from its recorded history (see `PlanInput.history`). @default none */
  history?: PlanInput['history']
  /** May the ranges of a standing plan be re-sized to the history (`rebalance`)? @default true */
  rebalance?: boolean
}

/**
 * The coordinator's next plan, or undefined when the published one stands.
 * - No plan yet: wait for `minPeers` compute peers (until `waitUntil`), then `plan`.
 * - A plan: `replan` (ranges and primaries kept while they live: running sessions go on;
 *   new peers become standbys). A plan that fell back to the bootstrap is fully re-planned
 *   once compute peers are alive. With `history`, a standing plan whose ranges no longer fit
 *   its primaries' measured speeds is re-sized (`rebalance`).
 */
export function nextPlan (input: NextPlanInput): Plan | undefined {
  return planChange(input).plan
}

/** `nextPlan`, saying whether the change is a history rebalance. */
export function planChange (input: NextPlanInput): { plan: Plan | undefined, rebalanced: boolean } {
  const { previous, manifest, settings } = input
  const { members, fallback } = planMembers(input.members)
  if (members.length === 0) return { plan: undefined, rebalanced: false }
  const computeCount = fallback ? 0 : members.length
  const base = { config: manifest.config, sizes: partSizes(manifest), members, strategy: settings.strategy, maxStages: maxStages(settings.faultTolerance?.level ?? 'medium', members.length), standbys: settings.faultTolerance?.level === 'critical' ? CRITICAL_REPLICAS - 1 : 1, history: input.history }
  if (previous === undefined || previous.model !== manifest.config.name) {
    if (computeCount < settings.minPeers && !input.waitOver) return { plan: undefined, rebalanced: false }
    return { plan: plan({ ...base, previous }), rebalanced: false }
  }
  const bootstrapIds = new Set(input.members.filter(m => m.role === 'bootstrap').map(m => m.peerId))
  const onBootstrap = previous.stages.some(s => bootstrapIds.has(s.primary))
  const next = !fallback && onBootstrap ? plan({ ...base, previous }) : replan(previous, { ...base, previous })
  const resized = input.rebalance === false ? undefined : rebalance(next, { ...base, previous })
  if (resized !== undefined) return { plan: resized, rebalanced: true }
  return { plan: JSON.stringify(next) === JSON.stringify(previous) ? undefined : next, rebalanced: false }
}

/** Coordinator side: keep settings and plan in the replicated state. */
export class CoordinatorLoop {
  private readonly mesh: Mesh
  private readonly settings: PipelineSettings | undefined
  private readonly manifestOf: (cid: string) => Promise<LayerManifest>
  private readonly started = Date.now()
  private readonly firstPlanWaitMs: number
  private readonly history?: () => Promise<PlanInput['history']>
  private readonly rebalanceMinMs: number
  private lastRebalance = 0
  private busy = false

  constructor (init: {
    mesh: Mesh
    settings?: PipelineSettings
    manifestOf: (cid: string) => Promise<LayerManifest>
    firstPlanWaitMs: number
    /** Decode speeds from this node's recorded history, read on each pass (see `PipelineNodeInit.history`). */
    history?: () => Promise<PlanInput['history']>
    /** Least time between two history rebalances (each moves ranges: sessions then re-prefill on the new route). @default REBALANCE_MIN_MS */
    rebalanceMinMs?: number
  }) {
    this.mesh = init.mesh
    this.settings = init.settings
    this.manifestOf = init.manifestOf
    this.firstPlanWaitMs = init.firstPlanWaitMs
    this.history = init.history
    this.rebalanceMinMs = init.rebalanceMinMs ?? REBALANCE_MIN_MS
  }

  /** One pass (as coordinator only); errors are the caller's to log. */
  async tick (signal: AbortSignal): Promise<void> {
    if (this.busy || this.mesh.coordinator().role !== 'coordinator') return
    this.busy = true
    try {
      let settings = currentSettings(this.mesh.state())
      if (settings === undefined) {
        if (this.settings === undefined) return
        await this.mesh.propose({ op: 'set', key: SETTINGS_KEY, value: this.settings }, { signal })
        settings = this.settings
      }
      const manifest = await this.manifestOf(settings.model)
      // a peer reported for failing to serve what it claims gets no stage while its entry holds
      const state = this.mesh.state()
      const bad = distrusted(state)
      for (const key of expiredDistrust(state)) await this.mesh.propose({ op: 'delete', key }, { signal })
      const history = await this.history?.()
      const { plan: next, rebalanced } = planChange({
        previous: currentPlan(state),
        // a private mesh plans only peers whose ticket admits them to compute (a revoked one loses its stage here)
        members: this.mesh.members().filter(m => !bad.has(m.peerId) && this.mesh.admitted(m.peerId, 'compute')),
        manifest,
        settings,
        waitOver: Date.now() - this.started > this.firstPlanWaitMs,
        history,
        rebalance: Date.now() - this.lastRebalance >= this.rebalanceMinMs
      })
      if (next !== undefined && this.mesh.coordinator().role === 'coordinator') {
        await publishPlan(this.mesh, next, { signal })
        if (rebalanced) this.lastRebalance = Date.now()
      }
    } catch (err) {
      if ((err as Error).name !== 'NotCoordinatorError') throw err // stepped down meanwhile: the next coordinator plans
    } finally {
      this.busy = false
    }
  }
}
