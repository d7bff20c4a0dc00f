import type { Capabilities } from '@shardmesh/mesh'
import type { ModelConfig } from '@shardmesh/model'

export type StrategyName = 'layer' | 'balanced' | 'hardware_aware' | 'browser_optimized' | 'custom' | 'attention_feedforward' | 'component' | 'hybrid'

export const STRATEGIES: StrategyName[] = ['layer', 'balanced', 'hardware_aware', 'browser_optimized', 'custom', 'attention_feedforward', 'component', 'hybrid']

/** One member as the planner sees it (a subset of the mesh's `Member`). */
export interface PlanMember {
  peerId: string
  capabilities: Capabilities
}

/** Bytes of weights per part, from `layerManifest()` (see `partSizes`). */
export interface PartSizes {
  embedding: number
  /** One entry per layer. */
  layers: number[]
  head: number
  /** The head needs the embedding table too (tied embeddings). */
  tiedHead: boolean
}

export interface PlanStage {
  /** Layers `[l0, l1)` (with `units`: their covering range). */
  range: [number, number]
  /**
   * Strategy attention_feedforward: units `[u0, u1)` the stage runs — unit 2l is layer l's
   * attention, 2l+1 its feed-forward — when it starts or ends inside a block.
   */
  units?: [number, number]
  /** Models of several parts (strategies component, hybrid): the part this stage runs, its layers counted within the part. */
  component?: string
  primary: string
  /** Peers that could take over this stage (memory fits), in order of preference. */
  standbys: string[]
  /** Why this peer got this range, for people reading `/api/mesh`. */
  reason: string
  /** Weight bytes the stage holds (layers, plus embedding/head on the first/last). */
  bytes: number
}

export interface Plan {
  /** Increases by one with every change. */
  version: number
  strategy: StrategyName
  model: string
  nLayers: number
  stages: PlanStage[]
}

export interface PlanInput {
  config: ModelConfig
  /** @default each layer counted as 1 byte, embedding and head as 0 (no memory limits can apply) */
  sizes?: PartSizes
  members: PlanMember[]
  strategy: StrategyName
  /** For `custom`: explicit ranges (or units, splitting blocks) and their peers, in layer order. */
  allocation?: Array<{ range: [number, number], units?: [number, number], peer: string }>
  /** Standbys listed per stage. @default 1 */
  standbys?: number
  /** Most stages (primaries); the other members stand by. @default one per member, at most one per layer */
  maxStages?: number
  /** The plan this one replaces; its version is continued. */
  previous?: Plan
  /**
   * Decode speed (tokens/s) per peer from its recorded history (@shardmesh/history
   * `plannerHistory`): with at least HISTORY_MIN_SAMPLES samples it replaces the throughput
   * the peer announced for `balanced`, `hardware_aware` and `browser_optimized`. A peer with
   * `avoid` (the history's recommendation, with its reason) gets no stage and stands by for
   * none while other members can take the stages.
   * @default none: announced throughput and priors only
   */
  history?: Map<string, { speed: number, samples: number, avoid?: string }>
}
