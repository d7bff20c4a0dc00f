import { PlanError } from './errors.ts'
import { numericsOf } from './numerics.ts'
import { avoided, fmtBytes, halfLayerSizes, HYBRID_UNIT_GAIN, partition, stageBytes, standbysFor, stageWork } from './planner.ts'
import { spanOfUnits } from './span.ts'
import { measuredProfile } from './strategies.ts'
import type { PeerProfile } from './strategies.ts'
import type { PartSizes, Plan, PlanInput, PlanMember, PlanStage } from './plan-types.ts'
import type { ModelConfig } from '@shardmesh/model'

/** One part of a model of several parts (an encoder–decoder's encoder, a two-tower model's text tower). */
export interface PlanComponent {
  name: string
  /** Bytes of the part's weights: its embedding (first stage), layers, head (last stage: pooling projection or LM head). */
  sizes: PartSizes
  /**
   * Forward passes of the part per request, weighing its work against the others': 1 for a
   * tower or an encoder (one pass over the input), the tokens generated for a decoder.
   */
  passes: number
  /** Its block shape, to split blocks into attention and feed-forward halves (hybrid). @default whole layers only */
  shape?: Pick<ModelConfig, 'dim' | 'hiddenDim' | 'nHeads' | 'nKvHeads' | 'headDim'>
}

export interface ComponentPlanInput {
  /** The model's name (what peers and `prepare` name). */
  model: string
  components: PlanComponent[]
  members: PlanMember[]
  strategy: 'component' | 'hybrid'
  /** @default 1 */
  standbys?: number
  /** Most primaries in all. @default one per member */
  maxStages?: number
  previous?: Plan
  history?: PlanInput['history']
}

interface Split { ranges: Array<[number, number]>, peers: PeerProfile[], units: boolean, cost: number, sq: number }

/** Compositions of `k` into `parts` positive counts, each at most its cap. */
function counts (k: number, caps: number[]): number[][] {
  if (caps.length === 1) return k >= 1 && k <= caps[0] ? [[k]] : []
  const out: number[][] = []
  for (let c = 1; c <= Math.min(caps[0], k - caps.length + 1); c++) for (const rest of counts(k - c, caps.slice(1))) out.push([c, ...rest])
  return out
}

/** The slowest stage of `ranges` over `peers` (the work a stage reads per request over its primary's speed), and the sum of the stages' squares. */
function costs (ranges: Array<[number, number]>, peers: PeerProfile[], sizes: PartSizes, passes: number): { cost: number, sq: number } {
  const each = ranges.map(([a, b], i) => stageWork(sizes, a, b) * passes / peers[i].speed)
  return { cost: Math.max(...each), sq: each.reduce((x, c) => x + c * c, 0) }
}

/**
 * Split one part over `peers`: whole layers, or (hybrid, when the part's shape is known)
 * units, when that uses more peers than the part has layers or makes its slowest stage
 * HYBRID_UNIT_GAIN× faster.
 */
function splitPart (c: PlanComponent, peers: PeerProfile[], hybrid: boolean): Split | null {
  const byId = [...peers].sort((a, b) => a.peerId < b.peerId ? -1 : 1)
  const layersFit = byId.length <= c.sizes.layers.length
  const layers = layersFit ? partition(byId, c.sizes, (a, b) => stageWork(c.sizes, a, b)) : null
  const whole = layers === null ? null : { ranges: layers, peers: byId, units: false, ...costs(layers, byId, c.sizes, c.passes) }
  if (!hybrid || c.shape === undefined) return whole
  const half = halfLayerSizes(c.sizes, c.shape)
  const unitRanges = byId.length <= half.layers.length ? partition(byId, half, (a, b) => stageWork(half, a, b)) : null
  if (unitRanges === null) return whole
  const units = { ranges: unitRanges, peers: byId, units: true, ...costs(unitRanges, byId, half, c.passes) }
  return whole === null || whole.cost / units.cost >= HYBRID_UNIT_GAIN ? units : whole
}

/**
 * A plan for a model of several parts: each part on its own peers (`component`), the parts
 * given primaries so that the slowest stage of any part is as fast as can be — every count of
 * peers per part is tried, the heavier parts taking the faster peers — and each part split by
 * the same DP as `balanced` (whole layers; with `hybrid`, whole layers or units, per part).
 * Stages carry `component` and ranges counted within their part. Deterministic; within every
 * memory budget; PlanError when the members are fewer than the parts or nothing fits.
 */
export function planComponents (input: ComponentPlanInput): Plan {
  const { components } = input
  if (components.length < 2) throw new PlanError(`the ${input.strategy} strategy over parts needs a model of several parts; ${input.model} has ${components.length}`)
  const members = [...input.members].sort((a, b) => a.peerId < b.peerId ? -1 : a.peerId > b.peerId ? 1 : 0)
  const usable = avoided(members.map(m => measuredProfile(m, input.history)), input.history).filter(p => p.excluded === undefined)
  if (usable.length < components.length) throw new PlanError(`${input.model} has ${components.length} parts (${components.map(c => c.name).join(', ')}), each on its own peers; only ${usable.length} member(s)`)
  const hybrid = input.strategy === 'hybrid'
  // a part takes at most one peer per layer, or with hybrid (its block shape known) one per half-block
  const caps = components.map(c => (hybrid && c.shape !== undefined ? 2 : 1) * c.sizes.layers.length)
  const k = Math.min(usable.length, input.maxStages ?? Infinity, caps.reduce((a, b) => a + b, 0))
  const bySpeed = [...usable].sort((a, b) => b.speed - a.speed || b.capacity - a.capacity || (a.peerId < b.peerId ? -1 : 1))
  const order = components.map((c, i) => ({ i, work: stageWork(c.sizes, 0, c.sizes.layers.length) * c.passes })).sort((a, b) => b.work - a.work || a.i - b.i)

  let best: { splits: Split[], cost: number, sq: number } | undefined
  for (const n of counts(k, caps)) {
    const splits: Array<Split | null> = new Array(components.length).fill(null)
    let next = 0
    for (const { i } of order) {
      splits[i] = splitPart(components[i], bySpeed.slice(next, next + n[i]), hybrid)
      next += n[i]
    }
    if (splits.some(x => x === null)) continue
    const all = splits as Split[]
    const cost = Math.max(...all.map(x => x.cost))
    const sq = all.reduce((a, x) => a + x.sq, 0)
    if (best === undefined || cost < best.cost - 1e-12 || (Math.abs(cost - best.cost) <= 1e-12 && sq < best.sq - 1e-12)) best = { splits: all, cost, sq }
  }
  if (best === undefined) throw new PlanError(`${input.model}'s parts do not fit the memory budgets of ${usable.length} member(s) (each part split into contiguous ranges on its own peers)`)

  const classes = new Map(members.map(m => [m.peerId, numericsOf(m.capabilities.backend)]))
  const numerics = (peerId: string): string => classes.get(peerId)!
  const used = new Set(best.splits.flatMap(x => x.peers.slice(0, x.ranges.length).map(p => p.peerId)))
  const pool = usable.filter(p => !used.has(p.peerId)).sort((a, b) => b.speed - a.speed || (a.peerId < b.peerId ? -1 : 1))
  const total = order.reduce((a, o) => a + o.work, 0)
  const stages: PlanStage[] = []
  best.splits.forEach((split, ci) => {
    const c = components[ci]
    const sizes = split.units ? halfLayerSizes(c.sizes, c.shape!) : c.sizes
    const share = `${Math.round(100 * order.find(o => o.i === ci)!.work / total)}% of the work (${c.passes} pass${c.passes === 1 ? '' : 'es'} per request)`
    split.ranges.forEach((range, i) => {
      const p = split.peers[i]
      const bytes = stageBytes(sizes, range[0], range[1])
      const span = split.units ? spanOfUnits(range) : { layers: range }
      const what = split.units ? `${range[1] - range[0]} of ${sizes.layers.length} units` : `${range[1] - range[0]} of ${c.sizes.layers.length} layers`
      const how = hybrid ? `hybrid: parts on their own peers, ${split.units ? 'blocks split within' : 'whole layers within'} ${c.name}; ` : 'component: '
      stages.push({
        range: span.layers,
        ...(span.units === undefined ? {} : { units: span.units }),
        component: c.name,
        primary: p.peerId,
        standbys: standbysFor(stages.length, bytes, pool, input.standbys ?? 1, numerics, p.peerId),
        reason: `${how}${c.name} (${share}) on ${split.ranges.length} peer(s), ${what}; ${p.basis}; ${fmtBytes(bytes)} of weights`,
        bytes
      })
    })
  })
  return { version: (input.previous?.version ?? 0) + 1, strategy: input.strategy, model: input.model, nLayers: components.reduce((a, c) => a + c.sizes.layers.length, 0), stages }
}

/** The route of each part of a component plan, in plan order. */
export function componentStages (plan: Plan): Map<string, PlanStage[]> {
  const out = new Map<string, PlanStage[]>()
  for (const s of plan.stages) {
    const name = s.component ?? ''
    const list = out.get(name) ?? []
    list.push(s)
    out.set(name, list)
  }
  return out
}
