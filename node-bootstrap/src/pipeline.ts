import type { Backend } from '@shardmesh/engine'
import type { MeshNode } from '@shardmesh/mesh'
import { FT_LEVELS, RECOVERY_STRATEGIES, STRATEGIES, createOpenAiHandler, pipelineNode } from '@shardmesh/pipeline'
import type { FaultTolerance, FtLevel, OpenAiHandler, PipelineNodeInit, PipelineService, RecoveryStrategy, StrategyName } from '@shardmesh/pipeline'
import type { ModelManifest, WeightsNode } from '@shardmesh/weights'
import { CliError } from './errors.ts'
import { logger } from './log.ts'

type Values = Record<string, string | boolean | undefined>

/** `--strategy`: a planner strategy other than `custom` (which needs an explicit allocation). */
export function strategyOf (values: Values): StrategyName {
  const s = String(values.strategy ?? 'layer')
  if (s === 'component') throw new CliError('--strategy component splits a model of several parts (an encoder–decoder, two towers) across peers; the mesh serves single-part (Llama) models so far — use hybrid, which splits a single-part model by layers or inside blocks')
  if (!STRATEGIES.includes(s as StrategyName) || s === 'custom') throw new CliError(`--strategy must be one of ${STRATEGIES.filter(x => x !== 'custom' && x !== 'component').join(', ')}, got "${s}"`)
  return s as StrategyName
}

/**
 * `--ft-level L` and `--recovery S`: what a head does when a stage of a running session is lost
 * (DESIGN §4). Either may be absent: the pipeline's default fills it.
 */
export function faultToleranceOf (values: Values): Partial<FaultTolerance> {
  const ft: Partial<FaultTolerance> = {}
  const level = values['ft-level']
  if (level !== undefined) {
    if (!FT_LEVELS.includes(level as FtLevel)) throw new CliError(`--ft-level must be one of ${FT_LEVELS.join(', ')}, got "${String(level)}"`)
    ft.level = level as FtLevel
  }
  const recovery = values.recovery
  if (recovery !== undefined) {
    if (!RECOVERY_STRATEGIES.includes(recovery as RecoveryStrategy)) throw new CliError(`--recovery must be one of ${RECOVERY_STRATEGIES.join(', ')}, got "${String(recovery)}"`)
    ft.recovery = recovery as RecoveryStrategy
  }
  return ft
}

/** The flags that pass `faultTolerance` on to a child `shardmesh peer`. */
export function faultToleranceArgs (ft: Partial<FaultTolerance>): string[] {
  return [...(ft.level === undefined ? [] : ['--ft-level', ft.level]), ...(ft.recovery === undefined ? [] : ['--recovery', ft.recovery])]
}

/** `peer --min-peers N`: compute peers to wait for before the first plan, should this peer be the first coordinator (0 when absent). */
export function minPeersFlag (values: Values): number {
  if (values['min-peers'] === undefined) return 0
  const n = Number(values['min-peers'])
  if (!Number.isInteger(n) || n < 0 || n > 256) throw new CliError(`--min-peers must be a whole number 0–256, got "${String(values['min-peers'])}"`)
  return n
}

/** `--local-peers N` (0 when absent). */
export function localPeersOf (values: Values): number {
  if (values['local-peers'] === undefined) return 0
  const n = Number(values['local-peers'])
  if (!Number.isInteger(n) || n < 0 || n > 64) throw new CliError(`--local-peers must be a whole number 0–64, got "${String(values['local-peers'])}"`)
  return n
}

/** The pipeline on this peer (see @shardmesh/pipeline `pipelineNode`), errors logged. */
export async function startPipeline (node: MeshNode, weights: WeightsNode, init: { model?: string, strategy?: StrategyName, minPeers?: number, head: boolean, faultTolerance?: Partial<FaultTolerance>, backend?: Backend, firstPlanWaitMs?: number, history?: PipelineNodeInit<ModelManifest>['history'] }): Promise<PipelineService<ModelManifest>> {
  const log = logger('pipeline')
  return await pipelineNode<ModelManifest>({
    node,
    weights: {
      openManifest: async (cid, options) => await weights.openManifest(cid, options),
      fetchStage: async (manifest, layers, options) => await weights.fetchStage(manifest, layers, options),
      fetchTokenizer: async (manifest, options) => await weights.fetchTokenizer(manifest, options),
      announce: async (manifest, options) => await weights.announce(manifest, options)
    },
    model: init.model,
    strategy: init.strategy,
    minPeers: init.minPeers,
    firstPlanWaitMs: init.firstPlanWaitMs,
    head: init.head,
    faultTolerance: init.faultTolerance,
    backend: init.backend,
    history: init.history,
    onError: err => { log.warn(err.message) }
  })
}

/** Sessions the pipeline's head is driving now (0 before its head started). */
export async function sessionsInFlight (pipeline: PipelineService<ModelManifest>): Promise<number> {
  try {
    return (await pipeline.ready({ signal: AbortSignal.abort() })).active // resolves at once when the head is up
  } catch {
    return 0
  }
}

export function openAiHandler (pipeline: PipelineService<ModelManifest>): OpenAiHandler {
  return createOpenAiHandler({ models: () => pipeline.models() })
}
