import { plan, stageWork } from './planner.ts'
import { profiles } from './strategies.ts'
import { HISTORY_MIN_SAMPLES } from './strategies.ts'
import type { PartSizes, Plan, PlanInput } from './plan-types.ts'

/** A history-driven re-plan is published only when it makes the slowest stage at least this much faster. */
export const REBALANCE_GAIN = 1.25

/** Strategies whose ranges follow measured speed (the others give equal or explicit shares). */
const SPEED_SIZED = new Set(['balanced', 'hardware_aware', 'browser_optimized'])

/** Time of the slowest stage of `stages`, each stage's work over its primary's speed. */
function slowest (stages: Array<{ range: [number, number], primary: string }>, speed: Map<string, number>, work: (l0: number, l1: number) => number): number {
  return Math.max(...stages.map(s => work(s.range[0], s.range[1]) / (speed.get(s.primary) ?? 1)))
}

/**
 * The previous plan's ranges re-sized to the primaries' speeds as their history now gives
 * them, or undefined when that is not worth a change. `replan` keeps a plan's ranges while its
 * primaries live, so without this a peer slowed after the plan was made would keep its
 * share. Only the ranges move: the same peers stay primaries, in the same order, and the
 * standbys are chosen again. Published when the slowest stage gets at least `REBALANCE_GAIN`×
 * faster, and only when history knows a primary (≥ HISTORY_MIN_SAMPLES samples).
 */
export function rebalance (previous: Plan, input: PlanInput, gain = REBALANCE_GAIN): Plan | undefined {
  const history = input.history
  if (history === undefined || !SPEED_SIZED.has(input.strategy) || previous.strategy !== input.strategy || previous.model !== input.config.name || previous.nLayers !== input.config.nLayers) return undefined
  const primaries = previous.stages.map(s => s.primary)
  if (!primaries.some(p => (history.get(p)?.samples ?? 0) >= HISTORY_MIN_SAMPLES)) return undefined
  const byId = new Map(input.members.map(m => [m.peerId, m]))
  if (!primaries.every(p => byId.has(p))) return undefined // a primary is gone: replan's job
  const sizes: PartSizes | undefined = input.sizes
  const work = sizes === undefined ? (l0: number, l1: number) => l1 - l0 : (l0: number, l1: number) => stageWork(sizes, l0, l1)
  const members = primaries.map(p => byId.get(p)!)
  const speed = new Map(profiles(input.strategy, members, input.config, sizes ?? { embedding: 0, layers: new Array(input.config.nLayers).fill(1), head: 0, tiedHead: false }, history).map(p => [p.peerId, p.speed]))
  // the planner orders primaries by peer id; a plan after take-overs may not: keep the previous order through an explicit allocation
  const sized = plan({ ...input, members, maxStages: members.length, standbys: 0 })
  if (sized.stages.length !== primaries.length) return undefined
  const rangeOf = new Map(sized.stages.map(s => [s.primary, s.range[1] - s.range[0]]))
  const allocation: Array<{ range: [number, number], peer: string }> = []
  let l0 = 0
  for (const p of primaries) {
    const n = rangeOf.get(p)
    if (n === undefined) return undefined
    allocation.push({ range: [l0, l0 + n], peer: p })
    l0 += n
  }
  const before = slowest(previous.stages, speed, work)
  const after = slowest(allocation.map(a => ({ range: a.range, primary: a.peer })), speed, work)
  if (!(after * gain <= before)) return undefined
  let next: Plan
  try {
    next = plan({ ...input, strategy: 'custom', allocation, previous })
  } catch {
    return undefined // a range no longer fits its primary's memory: leave it to a full re-plan
  }
  const basis = new Map(sized.stages.map(s => [s.primary, s.reason]))
  return {
    ...next,
    strategy: previous.strategy,
    stages: next.stages.map(s => ({ ...s, reason: `${basis.get(s.primary) ?? s.reason}; rebalanced by history: slowest stage ${(before / after).toFixed(2)}× faster` }))
  }
}
