/**
 * Chaos benchmark (pnpm bench:chaos [-- --trials N --configs level/strategy,… --seed S --peers P
 * --failures kill,hang --max-tokens T --trial-timeout SECONDS]): for each fault-tolerance level / recovery strategy pair,
 * one `shardmesh chaos --json` run — real peer processes on loopback, the head in the chaos
 * process, a peer SIGKILLed (or SIGSTOPped) at a seeded token of each generation, stories260K
 * greedy. Default: 4 pairs × 25 trials = 100 trials.
 * Per pair: completion, exact match with the failure-free run, stall p50/p95/max (the longest
 * gap between tokens from the kill on, over completed trials), and the head's RecoveryEvents.
 * Prints one JSON object, then a table, and beside it the figures the seed documents claim
 * (labelled as their claims: nothing here computes them). Figures from one run on a shared machine.
 */
import { spawn } from 'node:child_process'
import { join, resolve } from 'node:path'
import { FT_LEVELS, RECOVERY_STRATEGIES } from '@shardmesh/pipeline'
import type { FtLevel, RecoveryEvent, RecoveryStrategy } from '@shardmesh/pipeline'
import { repoRoot, storiesDir } from '../fixtures.ts'
import { chaosSummary, stallLine, stallStats } from '../../node-bootstrap/src/commands/chaos-plan.ts'
import type { ChaosTrial } from '../../node-bootstrap/src/commands/chaos-plan.ts'

const cli = resolve(repoRoot, 'node-bootstrap/src/cli.ts')

function arg (name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback
}

const TRIALS = Number(arg('trials', '25'))
const SEED = Number(arg('seed', '20261206'))
const PEERS = arg('peers', '3')
const FAILURES = arg('failures', 'kill')
const MAX_TOKENS = arg('max-tokens', '48')
/** Seconds a trial may take before it counts as failed (a recovery that hangs). */
const TRIAL_TIMEOUT = arg('trial-timeout', '15')
const CONFIGS = arg('configs', 'medium/progressive,medium/failover,high/parallel,low/reconnect').split(',').map(c => {
  const [level, recovery] = c.split('/')
  if (!FT_LEVELS.includes(level as FtLevel) || !RECOVERY_STRATEGIES.includes(recovery as RecoveryStrategy)) {
    throw new Error(`--configs takes level/strategy pairs (levels ${FT_LEVELS.join(', ')}; strategies ${RECOVERY_STRATEGIES.join(', ')}), got "${c}"`)
  }
  return { level: level as FtLevel, recovery: recovery as RecoveryStrategy }
})
if (!Number.isInteger(TRIALS) || TRIALS < 1) throw new Error(`--trials must be a whole number >= 1, got "${arg('trials', '')}"`)

/** What the seed documents claim (not measured here). */
const CLAIMS = { averageRecovery: '0.6–1.5 s', success: '99.5–99.9%' }
/** Issue #10's targets on loopback. */
const TARGETS = { warmStandbyStallP95: '< 300 ms', failoverStallP95: '< 1.5 s', exact: '100%' }

interface ChaosRun { seed: number, referenceTokens: number, stopped?: string, faultTolerance: { level: string, recovery: string }, trials: ChaosTrial[], recoveries: RecoveryEvent[] }

/** One `shardmesh chaos --json` run; its log lines pass through to stderr. */
async function chaos (level: string, recovery: string, seed: number): Promise<{ run?: ChaosRun, code: number | null, error?: string }> {
  const args = [cli, 'chaos', '--model', join(storiesDir(), 'stories260K.gguf'), '--peers', PEERS, '--trials', String(TRIALS), '--seed', String(seed),
    '--ft-level', level, '--recovery', recovery, '--failures', FAILURES, '--max-tokens', MAX_TOKENS, '--trial-timeout', TRIAL_TIMEOUT, '--log-level', 'warn', '--json']
  return await new Promise(res => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (d: Buffer) => { out += d.toString() })
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); process.stderr.write(d) })
    child.once('exit', code => {
      try {
        res({ run: JSON.parse(out) as ChaosRun, code })
      } catch {
        res({ code, error: err.trim().split('\n').slice(-3).join(' | ') || `exited ${String(code)} with no report` })
      }
    })
  })
}

interface ConfigResult {
  level: FtLevel
  recovery: RecoveryStrategy
  seed: number
  /** Why the run gave no report. */
  error?: string
  referenceTokens?: number
  /** Why the run ended before its trials (the mesh did not heal, or no victim of the kinds was left). */
  stopped?: string
  summary?: ReturnType<typeof chaosSummary>
  recoveries?: { count: number, ok: number, stallMs: ReturnType<typeof stallStats>, detectionMs: ReturnType<typeof stallStats> }
  errors?: string[]
}

const pct = (x: number): string => `${(100 * x).toFixed(1)}%`
const results: ConfigResult[] = []
for (const [i, c] of CONFIGS.entries()) {
  const seed = SEED + i
  process.stderr.write(`bench:chaos: --ft-level ${c.level} --recovery ${c.recovery}, ${TRIALS} trials, seed ${seed}\n`)
  const r = await chaos(c.level, c.recovery, seed)
  if (r.run === undefined) {
    results.push({ ...c, seed, error: r.error })
    continue
  }
  const events = r.run.recoveries
  const okEvents = events.filter(e => e.ok)
  results.push({
    ...c,
    seed,
    referenceTokens: r.run.referenceTokens,
    ...(r.run.stopped === undefined ? {} : { stopped: r.run.stopped }),
    summary: chaosSummary(r.run.trials),
    recoveries: { count: events.length, ok: okEvents.length, stallMs: stallStats(okEvents.map(e => e.stallMs)), detectionMs: stallStats(events.map(e => e.detectionMs)) },
    errors: [...new Set(r.run.trials.flatMap(t => t.error === undefined ? [] : [t.error.replace(/12D3KooW\w+/g, '<peer>')]))].slice(0, 5)
  })
}
const all = results.flatMap(r => r.summary === undefined ? [] : [r.summary])
const total = { trials: all.reduce((n, s) => n + s.trials, 0), completed: all.reduce((n, s) => n + s.completed, 0), exact: all.reduce((n, s) => n + s.exact, 0) }
process.stdout.write(JSON.stringify({ peers: Number(PEERS), trialsPerConfig: TRIALS, failures: FAILURES, maxTokens: Number(MAX_TOKENS), trialTimeoutSeconds: Number(TRIAL_TIMEOUT), results, total, seedDocumentClaims: CLAIMS, issueTargets: TARGETS }) + '\n\n')

const rows = [['level/strategy', 'seed', 'trials', 'completed', 'exact', 'stall p50 / p95 / max', 'failed: error after kill p50 / max', 'head recoveries (ok)', 'recovery stall p50 / p95 / max']]
for (const r of results) {
  if (r.summary === undefined || r.recoveries === undefined) {
    rows.push([`${r.level}/${r.recovery}`, String(r.seed), '-', '-', '-', `run failed: ${r.error ?? ''}`, '-', '-', '-'])
    continue
  }
  const s = r.summary
  rows.push([`${r.level}/${r.recovery}`, String(r.seed), String(s.trials), `${s.completed} (${pct(s.completionRate)})`, `${s.exact} (${pct(s.exactRate)})`, stallLine(s.stallMs), s.failedAfterMs.n === 0 ? '-' : `${Math.round(s.failedAfterMs.p50 ?? 0)} ms / ${Math.round(s.failedAfterMs.max ?? 0)} ms`, `${r.recoveries.count} (${r.recoveries.ok})`, stallLine(r.recoveries.stallMs)])
}
const widths = rows[0].map((_, j) => Math.max(...rows.map(row => row[j].length)))
for (const row of rows) process.stdout.write(row.map((cell, j) => cell.padEnd(widths[j])).join('  ') + '\n')
process.stdout.write(`\nall: ${total.completed}/${total.trials} completed (${total.trials === 0 ? '-' : pct(total.completed / total.trials)}), ${total.exact}/${total.trials} exact (measured above, ${PEERS} peer processes on loopback, failures: ${FAILURES}, a trial over ${TRIAL_TIMEOUT} s counts as failed)\n`)
for (const r of results) {
  if (r.stopped !== undefined) process.stdout.write(`  ${r.level}/${r.recovery} stopped early: ${r.stopped}\n`)
  if (r.errors !== undefined && r.errors.length > 0) process.stdout.write(`  ${r.level}/${r.recovery} errors: ${r.errors.join(' | ')}\n`)
}
process.stdout.write(`\nThe seed documents CLAIM (not measured here): ${CLAIMS.averageRecovery} average recovery, ${CLAIMS.success} success.\n`)
process.stdout.write(`Issue #10 targets: stall p95 ${TARGETS.warmStandbyStallP95} with warm standbys (high/parallel), ${TARGETS.failoverStallP95} with failover that fetches layers; ${TARGETS.exact} exact.\n`)
