import type { Plan, RecoveryEvent } from '@shardmesh/pipeline'

/**
 * Which peers a trial takes down: a stage's primary (first, a middle one, last), a pure standby,
 * the coordinator; or two at once: the primaries of two consecutive stages, or the coordinator
 * and the primary of a stage it does not serve.
 */
export type VictimKind = 'first' | 'middle' | 'last' | 'standby' | 'coordinator' | 'consecutive' | 'coordinator+stage'
export const VICTIM_KINDS: VictimKind[] = ['first', 'middle', 'last', 'standby', 'coordinator', 'consecutive', 'coordinator+stage']
/** What `shardmesh chaos` picks from by default: one peer per trial. */
export const SINGLE_VICTIMS: VictimKind[] = ['first', 'middle', 'last', 'standby', 'coordinator']
/** `kill`: SIGKILL (connections close); `hang`: SIGSTOP (connections stay open, nothing answers). */
export type FailureKind = 'kill' | 'hang'

export interface ChaosTrial {
  index: number
  victim: VictimKind | null
  failure: FailureKind | null
  /** The victim was taken down right after this many tokens had arrived. */
  killAtToken: number | null
  /** The victims' pids and peer ids (two for `consecutive` and `coordinator+stage`). */
  pids: number[]
  peerIds: string[]
  /** False when the generation ended (or failed) before the kill token, so nothing was injected. */
  injected: boolean
  completed: boolean
  /** Completed with exactly the reference tokens. */
  exact: boolean
  tokens: number
  /** Longest gap between consecutive tokens from the kill on (ms); null when no token followed it. */
  stallMs: number | null
  /** For a trial that failed after the kill: from the kill to the error (ms) — how fast a failure is reported. */
  failedAfterMs: number | null
  /** Wall time of the whole generation (ms). */
  ms: number
  error?: string
  /** RecoveryEvents the head recorded during the trial. */
  recoveries: RecoveryEvent[]
}

/** A small seeded PRNG (mulberry32): the same seed picks the same victims and tokens. */
export function mulberry32 (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const pickOne = <T>(rng: () => number, xs: T[]): T => xs[Math.floor(rng() * xs.length)]

/** The candidate victim sets of each kind in a plan, among the peers this run can kill. */
export function victimCandidates (plan: Plan, coordinator: string | null, killable: (peerId: string) => boolean): Record<VictimKind, string[][]> {
  const primaries = plan.stages.map(s => s.primary)
  const n = primaries.length
  const standbys = [...new Set(plan.stages.flatMap(s => s.standbys))].filter(p => !primaries.includes(p))
  const ok = (set: string[]): boolean => set.every(killable) && new Set(set).size === set.length
  const singles = (ids: string[]): string[][] => ids.map(id => [id]).filter(ok)
  const c = coordinator === null ? [] : [coordinator]
  return {
    first: singles(primaries.slice(0, 1)),
    middle: n >= 3 ? singles(primaries.slice(1, -1)) : [],
    last: n >= 2 ? singles(primaries.slice(-1)) : [],
    standby: singles(standbys),
    coordinator: singles(c),
    consecutive: primaries.slice(1).map((p, i) => [primaries[i], p]).filter(ok),
    'coordinator+stage': c.flatMap(co => primaries.filter(p => p !== co).map(p => [co, p])).filter(ok)
  }
}

export interface TrialPick { victim: VictimKind, peerIds: string[], pids: number[], failure: FailureKind, killAtToken: number }

/**
 * One trial's failure, drawn from `rng`: a victim kind among those the plan has (uniform), peers
 * of that kind, a failure kind, and the token after which it happens (1 … referenceTokens − 1,
 * so at least one token is still owed).
 */
export function pickTrial (rng: () => number, init: { plan: Plan, coordinator: string | null, pids: Map<string, number>, victims: VictimKind[], failures: FailureKind[], referenceTokens: number }): TrialPick | undefined {
  const candidates = victimCandidates(init.plan, init.coordinator, p => init.pids.has(p))
  const kinds = init.victims.filter(k => candidates[k].length > 0)
  if (kinds.length === 0) return undefined
  const victim = pickOne(rng, kinds)
  const peerIds = pickOne(rng, candidates[victim])
  const failure = pickOne(rng, init.failures)
  const killAtToken = 1 + Math.floor(rng() * (init.referenceTokens - 1))
  return { victim, peerIds, pids: peerIds.map(p => init.pids.get(p)!), failure, killAtToken }
}

/** Nearest-rank percentile of `xs` (q in [0, 1]); null for none. */
export function percentile (xs: number[], q: number): number | null {
  if (xs.length === 0) return null
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]
}

export interface StallStats { n: number, p50: number | null, p95: number | null, max: number | null }

export function stallStats (stalls: number[]): StallStats {
  return { n: stalls.length, p50: percentile(stalls, 0.5), p95: percentile(stalls, 0.95), max: stalls.length === 0 ? null : Math.max(...stalls) }
}

export interface GroupSummary { trials: number, completed: number, exact: number, completionRate: number, exactRate: number, stallMs: StallStats }

export function groupSummary (trials: ChaosTrial[]): GroupSummary {
  const completed = trials.filter(t => t.completed).length
  const exact = trials.filter(t => t.exact).length
  const stalls = trials.flatMap(t => t.stallMs === null ? [] : [t.stallMs])
  return { trials: trials.length, completed, exact, completionRate: trials.length === 0 ? 0 : completed / trials.length, exactRate: trials.length === 0 ? 0 : exact / trials.length, stallMs: stallStats(stalls) }
}

export interface ChaosSummary extends GroupSummary {
  /** Trials whose failure was injected (the rest ended before the kill token). */
  injected: number
  /** Of trials that failed after the kill: from the kill to the error. */
  failedAfterMs: StallStats
  byVictim: Partial<Record<VictimKind, GroupSummary>>
  byFailure: Partial<Record<FailureKind, GroupSummary>>
}

export function chaosSummary (trials: ChaosTrial[]): ChaosSummary {
  const by = <K extends string>(key: (t: ChaosTrial) => K | null): Partial<Record<K, GroupSummary>> => {
    const groups = new Map<K, ChaosTrial[]>()
    for (const t of trials) {
      const k = key(t)
      if (k !== null) groups.set(k, [...(groups.get(k) ?? []), t])
    }
    return Object.fromEntries([...groups].map(([k, ts]) => [k, groupSummary(ts)])) as Partial<Record<K, GroupSummary>>
  }
  return { ...groupSummary(trials), injected: trials.filter(t => t.injected).length, failedAfterMs: stallStats(trials.flatMap(t => t.failedAfterMs === null ? [] : [t.failedAfterMs])), byVictim: by(t => t.victim), byFailure: by(t => t.failure) }
}

const pct = (x: number): string => `${(100 * x).toFixed(1)}%`
const ms = (x: number | null): string => x === null ? '-' : `${Math.round(x)} ms`

/** `p50 / p95 / max` of a stall summary. */
export function stallLine (s: StallStats): string {
  return `${ms(s.p50)} / ${ms(s.p95)} / ${ms(s.max)}`
}

/** The text `shardmesh chaos` prints. */
export function chaosReport (r: { seed: number, model: string, peers: number, faultTolerance: { level: string, recovery: string }, referenceTokens: number, stopped?: string, summary: ChaosSummary, recoveries: RecoveryEvent[] }): string {
  const s = r.summary
  const lines = [
    `chaos: ${r.model}, ${r.peers} peer processes, --ft-level ${r.faultTolerance.level} --recovery ${r.faultTolerance.recovery}, seed ${r.seed}`,
    `  trials ${s.trials} (${s.injected} with the failure injected), reference ${r.referenceTokens} tokens`,
    ...(r.stopped === undefined ? [] : [`  STOPPED EARLY: ${r.stopped}`]),
    `  completed ${s.completed}/${s.trials} (${pct(s.completionRate)}), exact ${s.exact}/${s.trials} (${pct(s.exactRate)})`,
    `  stall p50 / p95 / max: ${stallLine(s.stallMs)} (over ${s.stallMs.n} completed trials; longest gap between tokens from the kill on)`,
    ...(s.failedAfterMs.n === 0 ? [] : [`  failed trials ended p50 / p95 / max: ${stallLine(s.failedAfterMs)} after the kill (${s.failedAfterMs.n} trials)`]),
    '  by victim:'
  ]
  for (const [k, g] of Object.entries(s.byVictim)) lines.push(`    ${k.padEnd(18)} ${g.completed}/${g.trials} completed, ${g.exact} exact, stall ${stallLine(g.stallMs)}`)
  lines.push('  by failure:')
  for (const [k, g] of Object.entries(s.byFailure)) lines.push(`    ${k.padEnd(18)} ${g.completed}/${g.trials} completed, ${g.exact} exact, stall ${stallLine(g.stallMs)}`)
  lines.push(`  recoveries recorded by the head: ${r.recoveries.length}`)
  for (const e of r.recoveries) {
    lines.push(`    ${e.ok ? 'ok    ' : 'FAILED'} ${e.class} ${e.strategy}/${e.path} stages [${e.stages.join(',')}] detection ${ms(e.detectionMs)}, stall ${ms(e.stallMs)}, replayed ${e.tokensReplayed}${e.error === undefined ? '' : `: ${e.error}`}`)
  }
  return lines.join('\n')
}
