import type { Mesh, MeshState } from '@shardmesh/mesh'
import type { Plan } from './plan-types.ts'

/** Key of the plan in the coordinator's replicated state (`state().data`). */
export const PLAN_KEY = 'pipeline.plan'

/** As coordinator: commit the plan to the replicated state; resolves with the log version. */
export async function publishPlan (mesh: Pick<Mesh, 'propose'>, plan: Plan, options: { signal?: AbortSignal } = {}): Promise<number> {
  return await mesh.propose({ op: 'set', key: PLAN_KEY, value: plan }, options)
}

/** The plan in a peer's copy of the replicated state, if any (shape-checked). */
export function currentPlan (state: Readonly<MeshState>): Plan | undefined {
  const p = state.data[PLAN_KEY] as Plan | undefined
  if (typeof p !== 'object' || p === null || !Array.isArray(p.stages) || typeof p.version !== 'number') return undefined
  return p
}

/** What `GET /api/mesh` shows of a plan. */
export function planView (plan: Plan): { version: number, strategy: string, stages: Array<{ range: [number, number], units?: [number, number], primary: string, standbys: string[], reason: string }> } {
  return { version: plan.version, strategy: plan.strategy, stages: plan.stages.map(s => ({ range: s.range, ...(s.units === undefined ? {} : { units: s.units }), primary: s.primary, standbys: s.standbys, reason: s.reason })) }
}
