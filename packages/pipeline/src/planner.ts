import type { LayerManifest, ModelConfig } from '@shardmesh/model'
import { InvalidAllocationError, PlanError } from './errors.ts'
import { numericsOf } from './numerics.ts'
import { profiles } from './strategies.ts'
import type { PeerProfile } from './strategies.ts'
import type { PartSizes, Plan, PlanInput, PlanStage } from './plan-types.ts'
import { spanOfUnits } from './span.ts'

/** Bytes of each part of a model, from its layer manifest. */
export function partSizes (manifest: LayerManifest): PartSizes {
  const of = (id: string): number => manifest.parts.find(p => p.id === id)?.byteLength ?? 0
  return {
    embedding: of('embedding'),
    layers: Array.from({ length: manifest.config.nLayers }, (_, l) => of(`layer.${l}`)),
    head: of('head'),
    tiedHead: manifest.config.tiedEmbeddings
  }
}

function unitSizes (config: ModelConfig): PartSizes {
  return { embedding: 0, layers: new Array(config.nLayers).fill(1), head: 0, tiedHead: false }
}

/**
 * Sizes over units (strategy attention_feedforward): each layer's bytes split between its
 * attention half (norm, Q, K, V, O) and its feed-forward half (norm, w1, w2, w3) by their
 * parameter counts; the embedding before unit 0, the head after the last.
 */
export function halfLayerSizes (sizes: PartSizes, config: Pick<ModelConfig, 'dim' | 'hiddenDim' | 'nHeads' | 'nKvHeads' | 'headDim'>): PartSizes {
  const q = config.nHeads * config.headDim
  const kv = config.nKvHeads * config.headDim
  const attention = config.dim + 2 * config.dim * q + 2 * config.dim * kv
  const ffn = config.dim + 3 * config.dim * config.hiddenDim
  const share = attention / (attention + ffn)
  return { ...sizes, layers: sizes.layers.flatMap(b => [b * share, b * (1 - share)]) }
}

/** Weight bytes of a stage `[l0, l1)` of a model with `nLayers` layers. */
export function stageBytes (sizes: PartSizes, l0: number, l1: number): number {
  const n = sizes.layers.length
  let bytes = 0
  for (let l = l0; l < l1; l++) bytes += sizes.layers[l]
  if (l0 === 0) bytes += sizes.embedding
  if (l1 === n) bytes += sizes.head + (sizes.tiedHead && l0 !== 0 ? sizes.embedding : 0)
  return bytes
}

/**
 * Bytes a stage `[l0, l1)` reads per forward pass: its layers, and on the last stage the LM
 * head (the embedding table when tied). The first stage's embedding lookup reads one row
 * per token, so it counts as nothing.
 */
export function stageWork (sizes: PartSizes, l0: number, l1: number): number {
  let bytes = 0
  for (let l = l0; l < l1; l++) bytes += sizes.layers[l]
  if (l1 === sizes.layers.length) bytes += sizes.head + (sizes.tiedHead ? sizes.embedding : 0)
  return bytes
}

interface Score { max: number, sq: number, split: number }

/**
 * Contiguous ranges for `peers` in order, minimizing the slowest stage (then the sum of
 * squared stage costs), each stage within its peer's memory. Null when nothing fits.
 */
export function partition (peers: PeerProfile[], sizes: PartSizes, work: (l0: number, l1: number) => number): Array<[number, number]> | null {
  const n = sizes.layers.length
  const k = peers.length
  const best: Array<Array<Score | null>> = Array.from({ length: k + 1 }, () => new Array(n + 1).fill(null))
  best[0][0] = { max: 0, sq: 0, split: 0 }
  for (let i = 1; i <= k; i++) {
    const p = peers[i - 1]
    for (let l = i; l <= n - (k - i); l++) {
      for (let j = i - 1; j < l; j++) {
        const prev = best[i - 1][j]
        if (prev === null || stageBytes(sizes, j, l) > p.capacity) continue
        const c = work(j, l) / p.speed
        const s: Score = { max: Math.max(prev.max, c), sq: prev.sq + c * c, split: j }
        const cur = best[i][l]
        if (cur === null || s.max < cur.max - 1e-12 || (Math.abs(s.max - cur.max) <= 1e-12 && s.sq < cur.sq - 1e-12)) best[i][l] = s
      }
    }
  }
  if (best[k][n] === null) return null
  const ranges: Array<[number, number]> = []
  for (let i = k, l = n; i > 0; i--) {
    const j = best[i][l]!.split
    ranges.unshift([j, l])
    l = j
  }
  return ranges
}

export function fmtBytes (b: number): string {
  return b >= 1 << 20 ? `${(b / (1 << 20)).toFixed(1)} MiB` : b >= 1024 ? `${(b / 1024).toFixed(1)} KiB` : `${b} B`
}

/** Standbys of a stage: peers whose budget fits it and that compute with the primary's numerics (one could take over a running session). */
export function standbysFor (stageIndex: number, bytes: number, pool: PeerProfile[], count: number, numerics: (peerId: string) => string, primary: string): string[] {
  const fit = pool.filter(p => bytes <= p.capacity && numerics(p.peerId) === numerics(primary))
  const out: string[] = []
  for (let i = 0; i < fit.length && out.length < count; i++) out.push(fit[(stageIndex + i) % fit.length].peerId)
  return out
}

/** The allocation's ranges, in units when `units` (an entry without units runs its whole layers). */
function customRanges (input: PlanInput, byId: Map<string, PeerProfile>, units: boolean): Array<[number, number]> {
  const alloc = input.allocation
  if (alloc === undefined || alloc.length === 0) throw new InvalidAllocationError('the custom strategy needs an allocation: [{ range: [l0, l1], peer }]')
  const what = units ? 'unit' : 'layer'
  const ranges = alloc.map(a => units ? a.units ?? [2 * a.range[0], 2 * a.range[1]] as [number, number] : a.range)
  let next = 0
  for (const [i, a] of alloc.entries()) {
    if (!byId.has(a.peer)) throw new InvalidAllocationError(`peer ${a.peer} is not a live member`)
    if (ranges[i][0] !== next || ranges[i][1] <= ranges[i][0]) throw new InvalidAllocationError(`range [${ranges[i].join(', ')}] does not continue at ${what} ${next}`)
    next = ranges[i][1]
  }
  const end = units ? 2 * input.config.nLayers : input.config.nLayers
  if (next !== end) throw new InvalidAllocationError(`the allocation ends at ${what} ${next}; the model has ${end}`)
  if (new Set(alloc.map(a => a.peer)).size !== alloc.length) throw new InvalidAllocationError('a peer appears twice in the allocation')
  return ranges
}

/**
 * Profiles with the peers history says to avoid excluded (their reason in `excluded`) — unless
 * that would leave no usable member, when they are planned as before.
 */
export function avoided (all: PeerProfile[], history: PlanInput['history']): PeerProfile[] {
  const out = all.map(p => {
    const why = history?.get(p.peerId)?.avoid
    return why === undefined || p.excluded !== undefined ? p : { ...p, excluded: `history recommends avoiding it: ${why}` }
  })
  return out.some(p => p.excluded === undefined) ? out : all
}

/** Hybrid chooses units over whole layers when they make the slowest stage at least this much faster. */
export const HYBRID_UNIT_GAIN = 1.1

/**
 * Time of the slowest stage of `p`: the bytes each stage reads per token (over units for a
 * unit plan) divided by its primary's speed as `balanced` measures it.
 */
function slowestStage (p: Plan, input: PlanInput): number {
  const layerSizes = input.sizes ?? unitSizes(input.config)
  const units = halfLayerSizes(layerSizes, input.config)
  const speed = new Map(profiles('balanced', input.members, input.config, layerSizes, input.history).map(x => [x.peerId, x.speed]))
  return Math.max(...p.stages.map(st => {
    const [u0, u1] = st.units ?? [2 * st.range[0], 2 * st.range[1]]
    return stageWork(units, u0, u1) / (speed.get(st.primary) ?? 1)
  }))
}

/**
 * `hybrid` on a model of one part: `balanced` (whole layers), unless splitting blocks
 * (`attention_feedforward`) uses more of the members (more of them than layers) or makes the
 * slowest stage HYBRID_UNIT_GAIN× faster. The stages' reasons say which and why.
 */
function hybridPlan (input: PlanInput): Plan {
  const layers = plan({ ...input, strategy: 'balanced' })
  const units = plan({ ...input, strategy: 'attention_feedforward' })
  const [a, b] = [slowestStage(layers, input), slowestStage(units, input)]
  const more = units.stages.length > layers.stages.length
  const chosen = more || a / b >= HYBRID_UNIT_GAIN ? units : layers
  const why = chosen === units
    ? more ? `split blocks: ${units.stages.length} stages for ${input.members.length} members where whole layers allow ${layers.stages.length}` : `split blocks: the slowest stage is ${(a / b).toFixed(2)}× faster than with whole layers`
    : `whole layers: splitting blocks would make the slowest stage only ${(a / b).toFixed(2)}× faster (needs ${HYBRID_UNIT_GAIN}×)`
  return { ...chosen, strategy: 'hybrid', stages: chosen.stages.map(st => ({ ...st, reason: `hybrid (one part: ${why}); ${st.reason}` })) }
}

/** The plan for these members: deterministic (same input, same plan) and within every memory budget. */
export function plan (input: PlanInput): Plan {
  if (input.strategy === 'hybrid') return hybridPlan(input)
  if (input.strategy === 'component') throw new PlanError(`the component strategy splits a model of several parts (planComponents); ${input.config.name} is one part — use hybrid`)
  const { config, strategy } = input
  const layerSizes = input.sizes ?? unitSizes(config)
  if (layerSizes.layers.length !== config.nLayers) throw new PlanError(`sizes list ${layerSizes.layers.length} layers; the model has ${config.nLayers}`)
  // attention_feedforward (and a custom allocation naming units) plans over units: a stage may start or end inside a block
  const inUnits = strategy === 'attention_feedforward' || (strategy === 'custom' && input.allocation?.some(a => a.units !== undefined) === true)
  const sizes = inUnits ? halfLayerSizes(layerSizes, config) : layerSizes
  const segments = sizes.layers.length
  const members = [...input.members].sort((a, b) => a.peerId < b.peerId ? -1 : a.peerId > b.peerId ? 1 : 0)
  const all = avoided(profiles(strategy, members, config, sizes, input.history), input.history)
  const usable = all.filter(p => p.excluded === undefined)
  if (usable.length === 0) throw new PlanError(`no usable member for the ${strategy} strategy${all.length > 0 ? ': ' + all.map(p => `${p.peerId}: ${p.excluded}`).join('; ') : ''}`)
  const byId = new Map(usable.map(p => [p.peerId, p]))
  const classes = new Map(members.map(m => [m.peerId, numericsOf(m.capabilities.backend)]))
  const numerics = (peerId: string): string => classes.get(peerId)!
  const layerWork = !inUnits && (strategy === 'layer' || input.sizes === undefined)
    ? (l0: number, l1: number) => l1 - l0
    : (l0: number, l1: number) => stageWork(sizes, l0, l1)

  let primaries: PeerProfile[]
  let ranges: Array<[number, number]> | null
  if (strategy === 'custom') {
    ranges = customRanges(input, byId, inUnits)
    primaries = input.allocation!.map(a => byId.get(a.peer)!)
    ranges.forEach((r, i) => {
      const b = stageBytes(sizes, r[0], r[1])
      if (b > primaries[i].capacity) throw new InvalidAllocationError(`layers [${r.join(', ')}] need ${fmtBytes(b)}; ${primaries[i].peerId} offers ${fmtBytes(primaries[i].capacity)}`)
    })
  } else {
    const k = Math.max(1, Math.min(usable.length, segments, input.maxStages ?? Infinity))
    const bySpeed = [...usable].sort((a, b) => b.speed - a.speed || b.capacity - a.capacity || (a.peerId < b.peerId ? -1 : 1))
    const byCapacity = [...usable].sort((a, b) => b.capacity - a.capacity || b.speed - a.speed || (a.peerId < b.peerId ? -1 : 1))
    const inOrder = (set: PeerProfile[]): PeerProfile[] => set.slice(0, k).sort((a, b) => a.peerId < b.peerId ? -1 : 1)
    primaries = inOrder(bySpeed)
    ranges = partition(primaries, sizes, layerWork)
    if (ranges === null) {
      primaries = inOrder(byCapacity)
      ranges = partition(primaries, sizes, layerWork)
    }
    if (ranges === null) {
      const need = stageBytes(sizes, 0, segments)
      const have = usable.reduce((a, p) => a + p.capacity, 0)
      throw new PlanError(`the ${config.nLayers} layers (${fmtBytes(need)} of weights) do not fit the memory budgets of ${usable.length} member(s) (${fmtBytes(have)} in all, split into contiguous ranges)`)
    }
  }

  const used = new Set(primaries.map(p => p.peerId))
  const pool = usable.filter(p => !used.has(p.peerId)).sort((a, b) => b.speed - a.speed || (a.peerId < b.peerId ? -1 : 1))
  const stages: PlanStage[] = ranges.map((range, i) => {
    const p = primaries[i]
    const bytes = stageBytes(sizes, range[0], range[1])
    const budget = p.capacity === Infinity ? 'no declared budget' : `budget ${fmtBytes(p.capacity)}`
    const share = strategy === 'custom' ? 'explicit allocation' : inUnits ? `${range[1] - range[0]} of ${segments} units (attention or feed-forward halves of blocks) over ${ranges!.length} peer(s)` : `${range[1] - range[0]} of ${config.nLayers} layers over ${ranges!.length} peer(s)`
    const span = inUnits ? spanOfUnits(range) : { layers: range }
    return {
      range: span.layers,
      ...(span.units === undefined ? {} : { units: span.units }),
      primary: p.peerId,
      standbys: standbysFor(i, bytes, pool, input.standbys ?? 1, numerics, p.peerId),
      reason: `${strategy}: ${share}; ${p.basis}; ${fmtBytes(bytes)} of weights, ${budget}`,
      bytes
    }
  })
  return { version: (input.previous?.version ?? 0) + 1, strategy, model: config.name, nLayers: config.nLayers, stages }
}

/**
 * Re-plan after members joined or left. Running sessions keep their route, and the plan
 * keeps its ranges and primaries while every primary is still a member (and not one the
 * history says to avoid) and the strategy and model are unchanged (only standbys are
 * refreshed); otherwise a new plan is made. The
 * version changes only when something did.
 */
export function replan (previous: Plan, input: PlanInput): Plan {
  // a primary history says to avoid gives its range up as if it were lost (when anyone else is left)
  const keep = input.members.filter(m => input.history?.get(m.peerId)?.avoid === undefined)
  const live = new Set((keep.length > 0 ? keep : input.members).map(m => m.peerId))
  const same = previous.strategy === input.strategy && previous.model === input.config.name && previous.nLayers === input.config.nLayers
  if (!same) return plan({ ...input, previous })
  // a lost primary's range goes to its first live standby (the peer heads fail running sessions over to); the other stages stay
  const used = new Set(previous.stages.map(s => s.primary).filter(p => live.has(p)))
  const primaries: string[] = []
  for (const s of previous.stages) {
    const p = live.has(s.primary) ? s.primary : s.standbys.find(x => live.has(x) && !used.has(x))
    if (p === undefined) return plan({ ...input, previous }) // nobody stands by: re-plan the whole pipeline (ranges may merge)
    used.add(p)
    primaries.push(p)
  }
  let fresh: Plan
  try {
    fresh = plan({ ...input, strategy: 'custom', allocation: previous.stages.map((s, i) => ({ range: s.range, ...(s.units === undefined ? {} : { units: s.units }), peer: primaries[i] })), previous })
  } catch {
    return plan({ ...input, previous }) // a primary's budget shrank below its range
  }
  const stages = previous.stages.map((s, i) => s.primary === primaries[i]
    ? { ...s, standbys: fresh.stages[i].standbys }
    : { ...s, primary: primaries[i], standbys: fresh.stages[i].standbys, reason: `${s.reason}; took over from ${s.primary}, ${input.history?.get(s.primary)?.avoid === undefined ? 'which was lost' : `which history says to avoid (${input.history.get(s.primary)!.avoid!})`}` })
  const changed = stages.some((s, i) => s.primary !== previous.stages[i].primary || s.standbys.join() !== previous.stages[i].standbys.join())
  return changed ? { ...previous, version: previous.version + 1, stages } : previous
}
