import { cpuBackend } from '@shardmesh/engine'
import { encodeControl } from '@shardmesh/protocol'
import type { Backend, TensorSource } from '@shardmesh/engine'
import type { MeshNode } from '@shardmesh/mesh'
import { createTokenizer } from '@shardmesh/model'
import type { LayerManifest, ModelConfig, TokenizerSpec } from '@shardmesh/model'
import { CoordinatorLoop, currentSettings } from './coordinator-loop.ts'
import type { PipelineSettings } from './coordinator-loop.ts'
import { Head } from './head.ts'
import { currentPlan } from './plan-state.ts'
import type { Plan, PlanInput, StrategyName } from './plan-types.ts'
import { Endpoint } from './endpoint.ts'
import { StageServer } from './stage-server.ts'
import type { ServedModel } from './openai/handlers.ts'
import { DEFAULT_FAULT_TOLERANCE, RecoveryLog } from './fault-tolerance.ts'
import { Distrust } from './distrust.ts'
import { ThroughputAudit } from './audit.ts'
import { verifyReports } from './verify.ts'
import { spanKey, spanOf } from './span.ts'
import type { FaultTolerance, FtLevel, RecoveryEvent } from './fault-tolerance.ts'

/** Levels at which standbys hold their range's weights loaded (warm). */
const WARM_LEVELS = new Set<FtLevel>(['high', 'critical'])

/** What the pipeline needs of a weights node (`weightsNode()` of @shardmesh/weights fits). */
export interface PipelineWeights<M extends LayerManifest & { config: ModelConfig }> {
  openManifest: (cid: string, options?: { signal?: AbortSignal }) => Promise<M>
  fetchStage: (manifest: M, layers: [number, number], options?: { signal?: AbortSignal }) => Promise<{ tensors: TensorSource }>
  fetchTokenizer: (manifest: M, options?: { signal?: AbortSignal }) => Promise<TokenizerSpec | undefined>
  /** Announce the held layers (after a stage is served, so holders cover what is served). */
  announce: (manifest: M, options?: { signal?: AbortSignal }) => Promise<unknown>
}

export interface PipelineNodeInit<M extends LayerManifest & { config: ModelConfig }> {
  node: MeshNode
  weights: PipelineWeights<M>
  /** Manifest CID: published by this peer when it is coordinator. @default read from the state */
  model?: string
  /** @default 'layer' */
  strategy?: StrategyName
  /** Compute peers the coordinator waits for before its first plan. @default 0 */
  minPeers?: number
  /** Longest wait for `minPeers`. @default 30000 */
  firstPlanWaitMs?: number
  /** Run a session driver here (the bootstrap, or a peer with `--port`). @default false */
  head?: boolean
  /** @default cpuBackend() */
  backend?: Backend
  /** Re-check membership and plan this often (also on every mesh event, debounced). @default 500 */
  tickMs?: number
  /** Longest a request waits for a plan whose stages all serve. @default 60000 */
  readyTimeoutMs?: number
  /** Level and recovery strategy of sessions this head drives (a request may override them). @default DEFAULT_FAULT_TOLERANCE */
  faultTolerance?: Partial<FaultTolerance>
  /**
   * Decode speed per peer from this node's recorded history (@shardmesh/history
   * `plannerHistory`), read by the coordinator on each pass: its plans size ranges by it and
   * re-size a standing plan's ranges when a primary's speed changed. The pipeline does not
   * read history itself (no DuckDB here). @default none: announced throughput only
   */
  history?: () => Promise<PlanInput['history']>
  /** Least time between two history rebalances. @default REBALANCE_MIN_MS */
  rebalanceMinMs?: number
  onError?: (err: Error) => void
}

/**
 * The pipeline on one peer: as coordinator it publishes the model and plan into the
 * replicated state (re-planned as members come and go); every peer serves the ranges the plan
 * gives it (weights fetched over IPFS); a head runs sessions along the plan's route.
 */
export class PipelineService<M extends LayerManifest & { config: ModelConfig }> {
  readonly endpoint: Endpoint
  /** Reports of peers that failed to serve what they claim, and (as coordinator) their recording. */
  readonly distrust: Distrust
  /** Audits of announced throughput: answered by every peer, run by the coordinator. */
  readonly audit: ThroughputAudit
  private readonly init: PipelineNodeInit<M>
  private readonly controller = new AbortController()
  private readonly loop: CoordinatorLoop
  private readonly manifests = new Map<string, Promise<M>>()
  private stageServer: StageServer | undefined
  private starting: Promise<unknown> | undefined
  private head: Head | undefined
  private headStarting: Promise<void> | undefined
  private served: string | undefined
  private serving: Promise<void> = Promise.resolve()
  private timer: ReturnType<typeof setInterval> | undefined
  private debounce: ReturnType<typeof setTimeout> | undefined
  private readonly listeners: Array<() => void> = []
  private readonly recoveryLog = new RecoveryLog()

  constructor (init: PipelineNodeInit<M>) {
    this.init = init
    this.endpoint = new Endpoint(init.node)
    const mesh = init.node.services.mesh
    this.distrust = new Distrust({ node: init.node, mesh, verify: verifyReports({ endpoint: this.endpoint, mesh, model: async () => await this.modelName() }), onError: err => { this.report(err) } })
    this.audit = new ThroughputAudit({ node: init.node, mesh, backend: init.backend ?? cpuBackend(), distrust: this.distrust, onError: err => { this.report(err) } })
    const settings: PipelineSettings | undefined = init.model === undefined ? undefined : { model: init.model, strategy: init.strategy ?? 'layer', minPeers: init.minPeers ?? 0, faultTolerance: { ...DEFAULT_FAULT_TOLERANCE, ...init.faultTolerance } }
    this.loop = new CoordinatorLoop({ mesh, settings, manifestOf: async cid => await this.manifest(cid), firstPlanWaitMs: init.firstPlanWaitMs ?? 30_000, history: init.history, rebalanceMinMs: init.rebalanceMinMs })
  }

  private async manifest (cid: string): Promise<M> {
    let m = this.manifests.get(cid)
    if (m === undefined) {
      m = this.init.weights.openManifest(cid, { signal: this.controller.signal })
      m.catch(() => { this.manifests.delete(cid) })
      this.manifests.set(cid, m)
    }
    return await m
  }

  /** The served model's name (what `prepare` names), once the mesh has one. */
  private async modelName (): Promise<string | undefined> {
    const cid = currentSettings(this.init.node.services.mesh.state())?.model
    return cid === undefined ? undefined : (await this.manifest(cid)).config.name
  }

  async start (): Promise<void> {
    await this.endpoint.start()
    await this.distrust.start()
    await this.audit.start()
    // until the stage server runs (the model is being opened), say so at once to a head looking for a replacement
    this.listeners.push(this.endpoint.onMessage(msg => {
      if (!('control' in msg) || this.stageServer !== undefined) return
      const c = msg.control
      // a session opened here (a head on an older view of this peer) hears it too, instead of waiting for its first token
      const to = c.type === 'prepare' ? { peerId: msg.from, addrs: [] } : c.type === 'open' ? c.head : undefined
      if (to !== undefined) void this.endpoint.send(to, encodeControl({ type: 'error', session: c.session, code: 'JOINING', message: `${this.endpoint.peerId} is still joining` })).catch(() => {})
    }))
    const mesh = this.init.node.services.mesh
    const poke = (): void => { this.schedule() }
    for (const type of ['coordinator', 'member', 'state'] as const) {
      mesh.addEventListener(type, poke)
      this.listeners.push(() => { mesh.removeEventListener(type, poke) })
    }
    this.timer = setInterval(poke, this.init.tickMs ?? 500)
    this.schedule()
  }

  private schedule (): void {
    if (this.controller.signal.aborted) return
    clearTimeout(this.debounce)
    this.debounce = setTimeout(() => { void this.tick() }, 100)
  }

  private report (err: unknown): void {
    if (this.controller.signal.aborted) return
    this.init.onError?.(err as Error)
  }

  private async tick (): Promise<void> {
    const signal = this.controller.signal
    await this.loop.tick(signal).catch(err => { this.report(err) })
    this.audit.tick()
    const state = this.init.node.services.mesh.state()
    const settings = currentSettings(state)
    if (settings === undefined) return
    const plan = currentPlan(state)
    // the stage server runs even where the plan names this peer for nothing: a head may ask it to take over a range
    if (this.stageServer === undefined && this.starting === undefined) this.starting = this.server(settings.model).catch(err => { this.report(err) }).finally(() => { this.starting = undefined })
    if (plan !== undefined) this.serveAssigned(settings.model, plan)
    if (this.init.head === true && this.head === undefined && this.headStarting === undefined) {
      this.headStarting = this.startHead(settings.model).catch(err => { this.report(err) }).finally(() => { this.headStarting = undefined })
    }
    this.init.node.services.mesh.setLoad((this.stageServer?.stats().sessions ?? 0) + (this.head?.active ?? 0))
  }

  /**
   * Serve what the plan gives this peer: its primary range, and at level `high` and above
   * the ranges it stands by for (warm standbys: weights loaded, so taking over needs no
   * fetch). Ranges no longer planned go once their last session ends.
   */
  private serveAssigned (cid: string, plan: Plan): void {
    const self = this.init.node.peerId.toString()
    const warm = WARM_LEVELS.has(this.meshFaultTolerance().level)
    const spans = plan.stages.filter(s => s.primary === self || (warm && s.standbys.includes(self))).map(s => spanOf({ layers: s.range, units: s.units }))
    const key = `${cid}:${spans.map(spanKey).join(',')}`
    if (this.served === key) return
    this.served = key
    const signal = this.controller.signal
    this.serving = this.serving.then(async () => {
      if (spans.length === 0 && this.stageServer === undefined) return
      const server = await this.server(cid)
      for (const span of spans) await server.serve(span.layers, { signal, units: span.units })
      await server.retain(spans)
      const manifest = await this.manifest(cid)
      await this.init.weights.announce(manifest, { signal })
    }).catch(err => {
      if (this.served === key) this.served = undefined // try again on the next tick
      this.report(err)
    })
  }

  /** The stage server (started on first use): it also loads ranges a head asks for in a recovery. */
  private async server (cid: string): Promise<StageServer> {
    if (this.stageServer === undefined) {
      const manifest = await this.manifest(cid)
      if (this.stageServer !== undefined) return this.stageServer
      const server = new StageServer({
        endpoint: this.endpoint,
        backend: this.init.backend ?? cpuBackend(),
        config: manifest.config,
        tensors: async (layers, options) => (await this.init.weights.fetchStage(manifest, layers, options)).tensors,
        admitted: (peer, role) => this.init.node.services.mesh.admitted(peer, role)
      })
      this.stageServer = server
      await server.start()
    }
    return this.stageServer
  }

  /** The mesh's fault tolerance (published by the coordinator), else this peer's. */
  private meshFaultTolerance (): FaultTolerance {
    return currentSettings(this.init.node.services.mesh.state())?.faultTolerance ?? this.faultTolerance
  }

  private async startHead (cid: string): Promise<void> {
    const manifest = await this.manifest(cid)
    const spec = await this.init.weights.fetchTokenizer(manifest, { signal: this.controller.signal })
    if (spec === undefined) throw new Error(`model ${cid} has no tokenizer; the OpenAI API needs one`)
    const head = new Head({ endpoint: this.endpoint, mesh: this.init.node.services.mesh, config: manifest.config, tokenizer: createTokenizer(spec), readyTimeoutMs: this.init.readyTimeoutMs ?? 60_000, faultTolerance: this.faultTolerance, recoveries: this.recoveryLog, report: (peer, reason, detail) => { void this.distrust.report(peer, reason, detail, { signal: this.controller.signal }).catch(err => { this.report(err) }) } })
    await head.start()
    this.head = head
  }

  /** The models this head serves (empty until the model's settings and tokenizer are known). */
  models (): ServedModel[] {
    return this.head === undefined ? [] : [this.head.served()]
  }

  /** Fault tolerance of sessions driven here. */
  get faultTolerance (): FaultTolerance {
    return { ...DEFAULT_FAULT_TOLERANCE, ...this.init.faultTolerance }
  }

  /** Recoveries of sessions driven here, oldest first (bounded: RECOVERY_HISTORY). */
  recoveries (): RecoveryEvent[] { return this.recoveryLog.list() }

  /** Called with every recovery event of this head; returns the unsubscribe. */
  onRecovery (fn: (e: RecoveryEvent) => void): () => void { return this.recoveryLog.onRecovery(fn) }

  /** The head, once it is started (`head: true`). */
  async ready (options: { signal?: AbortSignal } = {}): Promise<Head> {
    while (this.head === undefined) {
      options.signal?.throwIfAborted()
      await new Promise(resolve => setTimeout(resolve, 100))
    }
    return this.head
  }

  async stop (): Promise<void> {
    this.controller.abort()
    clearInterval(this.timer)
    clearTimeout(this.debounce)
    for (const off of this.listeners) off()
    await this.serving.catch(() => {})
    await this.starting
    await this.headStarting
    await this.head?.stop()
    await this.stageServer?.stop()
    await this.audit.stop()
    await this.distrust.stop()
    await this.endpoint.stop()
  }
}

/** Start the pipeline on a peer (see `PipelineService`). */
export async function pipelineNode<M extends LayerManifest & { config: ModelConfig }> (init: PipelineNodeInit<M>): Promise<PipelineService<M>> {
  const service = new PipelineService(init)
  await service.start()
  return service
}
