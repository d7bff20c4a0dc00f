import { randomUUID } from 'node:crypto'
import type { Member, Mesh } from '@shardmesh/mesh'
import { currentPlan } from '@shardmesh/pipeline'
import type { Plan, RecoveryEvent, ServedModel } from '@shardmesh/pipeline'
import { BrowserMetrics } from './browser-metrics.ts'
import type { TabSummariesInit, TabSummaryStats } from './browser-metrics.ts'
import { historyRecommendations } from './report.ts'
import type { HistoryStore } from './store.ts'

/** Scores and recommendations are recomputed (and stored) this often. */
export const ANALYZE_MS = 60_000
/** Membership is rescanned this often for announced throughput that changed (besides member events). */
export const MEMBERS_SCAN_MS = 1_000

export interface RecorderInit {
  store: HistoryStore
  /** This node's peer id (the `node` column). */
  self: string
  mesh: Pick<Mesh, 'state' | 'members' | 'coordinator' | 'addEventListener' | 'removeEventListener'>
  /** The head's recoveries (a `PipelineService` fits), when this node drives sessions. */
  recoveries?: { onRecovery: (fn: (e: RecoveryEvent) => void) => () => void }
  /**
   * Browser tabs' summaries (the mesh's `metrics` topic), persisted into `browser_metrics`.
   * @default not subscribed
   */
  tabSummaries?: TabSummariesInit
  /** @default ANALYZE_MS */
  analyzeMs?: number
  /** Failed writes and analyses (recording never throws into the node). */
  onError?: (err: Error) => void
}

type GenerateResult = Awaited<ReturnType<ServedModel['generate']>> & { plan?: Plan }

/**
 * Feeds a node's history from what it already has: every plan it sees in the replicated
 * state, its members' announced throughput and status changes, its head's recoveries, the
 * timings of the generations it drives (through `models()`) and, with `tabSummaries`, the
 * metric summaries browser tabs publish. Each write is queued (the
 * store commits in batches); nothing here waits on the database.
 */
export class HistoryRecorder {
  private readonly init: RecorderInit
  private readonly planKeys = new Set<string>()
  private readonly announced = new Map<string, string>()
  private readonly offs: Array<() => void> = []
  private timers: Array<ReturnType<typeof setInterval>> = []
  private analyzing = false
  private browser: BrowserMetrics | undefined

  constructor (init: RecorderInit) {
    this.init = init
  }

  private write: HistoryStore['append'] = async (table, row) => {
    await this.init.store.append(table, row).catch(err => { this.init.onError?.(err as Error) })
  }

  async start (): Promise<void> {
    for (const r of await this.init.store.query('SELECT DISTINCT model, plan_version FROM sharding_runs WHERE node = ?', [this.init.self])) this.planKeys.add(`${String(r.model)}#${String(r.plan_version)}`)
    const mesh = this.init.mesh
    const onState = (): void => { this.plan() }
    const onMember = (e: Event): void => { this.member((e as CustomEvent<{ peerId: string, status: string, reason?: string }>).detail) }
    mesh.addEventListener('state', onState)
    mesh.addEventListener('member', onMember)
    this.offs.push(() => { mesh.removeEventListener('state', onState) }, () => { mesh.removeEventListener('member', onMember) })
    if (this.init.recoveries !== undefined) this.offs.push(this.init.recoveries.onRecovery(e => { this.recovery(e) }))
    this.timers.push(setInterval(() => { this.scan() }, MEMBERS_SCAN_MS), setInterval(() => { void this.analyze() }, this.init.analyzeMs ?? 60_000))
    for (const t of this.timers) t.unref?.()
    if (this.init.tabSummaries !== undefined) {
      this.browser = new BrowserMetrics({ ...this.init.tabSummaries, self: this.init.self, write: this.write })
      this.browser.start()
    }
    this.plan()
    this.scan()
  }

  stop (): void {
    for (const off of this.offs.splice(0)) off()
    for (const t of this.timers) clearInterval(t)
    this.timers = []
    this.browser?.stop()
  }

  /** Tab summaries received, recorded and refused (undefined when not subscribed). */
  tabSummaryStats (): TabSummaryStats | undefined { return this.browser?.stats() }

  /** Record the current plan once per (model, version). */
  private plan (): void {
    const plan = currentPlan(this.init.mesh.state())
    if (plan === undefined) return
    const key = `${plan.model}#${plan.version}`
    if (this.planKeys.has(key)) return
    this.planKeys.add(key)
    const c = this.init.mesh.coordinator()
    const id = randomUUID()
    const at = Date.now()
    void this.write('sharding_runs', { id, ts: at, node: this.init.self, model: plan.model, plan_version: plan.version, strategy: plan.strategy, n_layers: plan.nLayers, coordinator: c.peerId, term: c.term, stages: plan.stages.length })
    plan.stages.forEach((s, i) => { void this.write('plan_stages', { run_id: id, stage: i, l0: s.range[0], l1: s.range[1], peer: s.primary, standbys: s.standbys, bytes: s.bytes, reason: s.reason }) })
  }

  /** One decode-throughput sample per member each time its announced measurement changes (a peer measures at join). */
  private scan (): void {
    for (const m of this.init.mesh.members()) this.sample(m)
  }

  private sample (m: Member): void {
    const t = m.capabilities.throughput
    if (t === undefined || !(t.decodeTokensPerSecond > 0)) return
    const key = `${t.model}:${t.decodeTokensPerSecond}:${m.firstSeen}`
    if (this.announced.get(m.peerId) === key) return
    this.announced.set(m.peerId, key)
    void this.write('peer_samples', { ts: Date.now(), node: this.init.self, peer: m.peerId, runtime: m.capabilities.runtime.name, backend: m.capabilities.backend.kind, model: t.model, op: 'decode', value: t.decodeTokensPerSecond, unit: 'tokens/s', source: 'announce' })
  }

  private member (d: { peerId: string, status: string, reason?: string }): void {
    void this.write('peer_events', { ts: Date.now(), node: this.init.self, peer: d.peerId, status: d.status, reason: d.reason ?? null })
    this.scan()
  }

  private recovery (e: RecoveryEvent): void {
    void this.write('recovery_events', { ts: e.at, node: this.init.self, session: e.session, failed: e.failed, stages: e.stages, class: e.class, level: e.level, strategy: e.strategy, path: e.path, detection_ms: e.detectionMs, stall_ms: e.stallMs, tokens_replayed: e.tokensReplayed, ok: e.ok, error: e.error ?? null })
    if (!e.ok) return
    for (const stage of e.stages) void this.write('timings', { generation_id: null, ts: e.at, node: this.init.self, scope: 'stage', stage, peer: null, l0: null, l1: null, component: 'recovery_stall', ms: e.stallMs, tokens: e.tokensReplayed })
  }

  /** Record one finished generation: its row and the route's prefill and decode timings. */
  generation (model: string, promptTokens: number, result: GenerateResult): void {
    const id = randomUUID()
    const at = Date.now()
    const t = result.timings
    const route = result.plan?.stages.map(s => s.primary) ?? []
    void this.write('generations', { id, ts: at, node: this.init.self, model, plan_version: result.plan?.version ?? null, route, prompt_tokens: promptTokens, tokens: result.tokens.length, finish_reason: result.finishReason, recoveries: result.recoveries.length, prefill_ms: t.prefillMs, decode_ms: t.decodeMs, prefill_tps: t.prefillTokensPerSecond, decode_tps: t.decodeTokensPerSecond })
    void this.write('timings', { generation_id: id, ts: at, node: this.init.self, scope: 'route', stage: null, peer: null, l0: null, l1: null, component: 'prefill', ms: t.prefillMs, tokens: promptTokens })
    void this.write('timings', { generation_id: id, ts: at, node: this.init.self, scope: 'route', stage: null, peer: null, l0: null, l1: null, component: 'decode', ms: t.decodeMs, tokens: Math.max(0, result.tokens.length - 1) })
  }

  /** The served models with each generation recorded (give this to the OpenAI handler). */
  models (served: () => ServedModel[]): () => ServedModel[] {
    return () => served().map(m => ({
      ...m,
      generate: async init => {
        const result = await m.generate(init)
        this.generation(m.id, init.promptTokens.length, result)
        return result
      }
    }))
  }

  /** Scores and recommendations now, stored (also run every `analyzeMs`). */
  async analyze (): Promise<void> {
    if (this.analyzing) return
    this.analyzing = true
    try {
      await historyRecommendations(this.init.store, { persist: true })
    } catch (err) {
      this.init.onError?.(err as Error)
    } finally {
      this.analyzing = false
    }
  }
}

/** Start recording (see `HistoryRecorder`). */
export async function historyRecorder (init: RecorderInit): Promise<HistoryRecorder> {
  const r = new HistoryRecorder(init)
  await r.start()
  return r
}
