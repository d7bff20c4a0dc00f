import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { MeshNode } from '@shardmesh/mesh'
import { currentPlan, planReady } from '@shardmesh/pipeline'
import type { Head, PipelineService, Plan, RecoveryEvent } from '@shardmesh/pipeline'
import type { ModelManifest } from '@shardmesh/weights'
import { CliError } from '../errors.ts'
import type { LocalPeers } from '../local-peers.ts'
import { logger } from '../log.ts'
import { strategyOf } from '../pipeline.ts'
import { bootMesh } from './start.ts'
import type { ServedModel } from './start.ts'
import { SINGLE_VICTIMS, VICTIM_KINDS, chaosReport, chaosSummary, mulberry32, pickTrial } from './chaos-plan.ts'
import type { ChaosTrial, FailureKind, VictimKind } from './chaos-plan.ts'

type Values = Record<string, string | boolean | undefined>

/** Longest wait for the mesh to plan and serve, at the start and between trials. */
const SETTLE_TIMEOUT_MS = 120_000
/** The plan must stay unchanged this long before a trial starts. */
const SETTLE_STABLE_MS = 1000
const FAILURE_KINDS: FailureKind[] = ['kill', 'hang']

function int (values: Values, flag: string, min: number, max: number): number {
  const raw = values[flag]
  const n = Number(raw)
  if (typeof raw !== 'string' || raw.trim() === '' || !Number.isInteger(n) || n < min || n > max) throw new CliError(`--${flag} must be a whole number ${min}–${max}, got "${String(raw)}"`)
  return n
}

function num (values: Values, flag: string, ok: (n: number) => boolean, what: string): number {
  const raw = values[flag]
  const n = Number(raw)
  if (typeof raw !== 'string' || raw.trim() === '' || !Number.isFinite(n) || !ok(n)) throw new CliError(`--${flag} must be ${what}, got "${String(raw)}"`)
  return n
}

function list<T extends string> (values: Values, flag: string, allowed: T[]): T[] {
  const items = String(values[flag]).split(',').map(s => s.trim()).filter(s => s !== '')
  const bad = items.filter(s => !allowed.includes(s as T))
  if (items.length === 0 || bad.length > 0) throw new CliError(`--${flag} takes a comma-separated list of ${allowed.join(', ')}, got "${String(values[flag])}"`)
  return [...new Set(items)] as T[]
}

export interface ChaosOptions {
  peers: number
  trials: number
  seed: number
  maxTokens: number
  prompt: string
  sampling: { temperature: number, topK: number, topP: number, seed: number }
  victims: VictimKind[]
  failures: FailureKind[]
  trialTimeoutMs: number
}

export function chaosOptions (values: Values): ChaosOptions {
  if (typeof values.model !== 'string') throw new CliError('--model is required (a GGUF, llama2.c .bin, Hugging Face folder, URL, or manifest CID)')
  const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : int(values, 'seed', 0, 2 ** 31 - 1)
  return {
    peers: int(values, 'peers', 2, 16),
    trials: int(values, 'trials', 1, 10_000),
    seed,
    maxTokens: int(values, 'max-tokens', 2, 4096),
    prompt: String(values.prompt ?? ''),
    sampling: {
      temperature: num(values, 'temperature', n => n >= 0, 'a number >= 0'),
      topK: int(values, 'top-k', 0, 1 << 20),
      topP: num(values, 'top-p', n => n > 0 && n <= 1, 'a number in (0, 1]'),
      seed: int(values, 'sample-seed', 0, 2 ** 31 - 1)
    },
    victims: values.victims === undefined ? SINGLE_VICTIMS : list(values, 'victims', VICTIM_KINDS),
    failures: list(values, 'failures', FAILURE_KINDS),
    trialTimeoutMs: num(values, 'trial-timeout', n => n > 0, 'a number of seconds > 0') * 1000
  }
}

/** The mesh a chaos run drives: this process is the head (never coordinator), the peers are children. */
interface ChaosMesh {
  node: MeshNode
  model: ServedModel
  pipeline: PipelineService<ModelManifest>
  local: LocalPeers
  head: Head
  stop: () => Promise<void>
}

/**
 * This process imports the model, provides its blocks and drives sessions (the head), but is
 * not eligible as coordinator: the coordinator is one of the peer processes, so it can be killed
 * like any other. Every peer is told to wait for all `peers` before the first plan.
 */
async function bootChaosMesh (values: Values, opts: ChaosOptions, store: string): Promise<ChaosMesh> {
  const meshId = typeof values['mesh-id'] === 'string' ? values['mesh-id'] : `chaos-${process.pid}-${opts.seed}`
  const booted = await bootMesh({ ...values, store, 'mesh-id': meshId, 'local-peers': String(opts.peers), 'min-peers': String(opts.peers) }, {
    coordinator: false,
    peerArgs: ['--min-peers', String(opts.peers), '--strategy', strategyOf(values)]
  })
  try {
    const head = await booted.pipeline!.ready({ signal: AbortSignal.timeout(SETTLE_TIMEOUT_MS) })
    return { ...booted, model: booted.model!, pipeline: booted.pipeline!, local: booted.local!, head }
  } catch (err) {
    await booted.stop()
    throw err
  }
}

/** Wait until every peer process is up and alive, and a plan serves on every stage, unchanged for a second. */
async function settle (m: ChaosMesh, signal: AbortSignal): Promise<Plan> {
  const mesh = m.node.services.mesh
  const self = m.node.peerId.toString()
  let stable: { version: number, since: number } | undefined
  for (;;) {
    signal.throwIfAborted()
    const slots = m.local.list()
    const children = await Promise.all(slots.map(async s => await m.local.ready(s.index, { signal })))
    const plan = currentPlan(mesh.state())
    const coordinator = mesh.view().coordinator
    const ok = plan !== undefined && coordinator !== null &&
      children.every(c => mesh.member(c.peerId)?.status === 'alive') &&
      planReady(plan, mesh, self)
    if (!ok) stable = undefined
    else if (stable?.version !== plan.version) stable = { version: plan.version, since: Date.now() }
    else if (Date.now() - stable.since >= SETTLE_STABLE_MS) return plan
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

/** One generation through the head; `onToken` sees each token with its arrival time. */
async function generate (m: ChaosMesh, opts: ChaosOptions, signal: AbortSignal, onToken?: (n: number) => void): Promise<{ tokens: number[], times: number[] }> {
  const { tokenizer, config } = m.head.served()
  const tokens: number[] = []
  const times: number[] = []
  await m.head.generate({
    promptTokens: tokenizer.encode(opts.prompt),
    maxTokens: opts.maxTokens,
    sampling: opts.sampling,
    stopIds: config.stopIds,
    signal,
    onToken: id => {
      tokens.push(id)
      times.push(performance.now())
      onToken?.(tokens.length)
    }
  })
  return { tokens, times }
}

/**
 * `shardmesh chaos`: a fresh mesh of `--peers` peer processes; one failure-free reference
 * generation; then `--trials` generations, each with one peer SIGKILLed (or SIGSTOPped: a hang)
 * at a seeded random token. Reports what completed, what matched the reference token for token,
 * and how long tokens stalled.
 */
export async function chaosCommand (values: Values): Promise<void> {
  const opts = chaosOptions(values)
  const json = values.json === true
  const log = logger('chaos')
  const say = (line: string): void => { if (!json) process.stderr.write(line + '\n') }
  say(`chaos: seed ${opts.seed} (rerun with --seed ${opts.seed}), ${opts.peers} peers, ${opts.trials} trials`)
  const temp = typeof values.store === 'string' ? undefined : await mkdtemp(join(tmpdir(), 'shardmesh-chaos-'))
  const store = typeof values.store === 'string' ? values.store : temp!
  const m = await bootChaosMesh(values, opts, store)
  const events: RecoveryEvent[] = []
  const offRecovery = m.pipeline.onRecovery(e => { events.push(e) })
  try {
    await settle(m, AbortSignal.timeout(SETTLE_TIMEOUT_MS))
    const reference = await generate(m, opts, AbortSignal.timeout(opts.trialTimeoutMs))
    if (reference.tokens.length < 2) throw new CliError(`the reference generation gave ${reference.tokens.length} token(s); chaos needs at least 2 (raise --max-tokens or change --prompt)`)
    say(`reference: ${reference.tokens.length} tokens`)
    const rng = mulberry32(opts.seed)
    const trials: ChaosTrial[] = []
    /** Why the run ended before `--trials` (reported, and the exit status is 1). */
    let stopped: string | undefined
    for (let i = 0; i < opts.trials; i++) {
      let plan: Plan
      try {
        plan = await settle(m, AbortSignal.timeout(SETTLE_TIMEOUT_MS))
      } catch (err) {
        stopped = `before trial ${i}, the mesh did not settle (every peer alive, a plan serving on every stage) within ${SETTLE_TIMEOUT_MS / 1000} s: ${(err as Error).message}`
        break
      }
      const pids = new Map(m.local.list().map(s => [s.peerId, s.pid]))
      const pick = pickTrial(rng, { plan, coordinator: m.node.services.mesh.view().coordinator, pids, victims: opts.victims, failures: opts.failures, referenceTokens: reference.tokens.length })
      if (pick === undefined) {
        stopped = `before trial ${i}, none of --victims ${opts.victims.join(',')} exists in plan v${plan.version} (${plan.stages.length} stage${plan.stages.length === 1 ? '' : 's'})`
        break
      }
      const before = events.length
      const t0 = performance.now()
      let injected = false
      let killedAt = 0
      const signal = AbortSignal.timeout(opts.trialTimeoutMs)
      let out: { tokens: number[], times: number[] } = { tokens: [], times: [] }
      let error: string | undefined
      let failedAfterMs: number | null = null
      try {
        out = await generate(m, opts, signal, n => {
          if (n === pick.killAtToken && !injected) {
            for (const pid of pick.pids) process.kill(pid, pick.failure === 'kill' ? 'SIGKILL' : 'SIGSTOP')
            injected = true
            killedAt = performance.now()
          }
        })
      } catch (err) {
        error = signal.aborted ? `no result within --trial-timeout ${opts.trialTimeoutMs / 1000} s` : `${(err as Error).name}: ${(err as Error).message}`
        if (injected) failedAfterMs = performance.now() - killedAt
      } finally {
        if (injected && pick.failure === 'hang') for (const pid of pick.pids) { try { process.kill(pid, 'SIGKILL') } catch {} } // their slots respawn them
      }
      const { tokens, times } = out
      // the kill happened right after token k arrived: the gaps from there on, the first spanning the kill
      const k = pick.killAtToken
      const after = injected ? times.slice(k).map((t, j) => t - times[k - 1 + j]) : []
      const trial: ChaosTrial = {
        index: i,
        victim: pick.victim,
        failure: pick.failure,
        killAtToken: k,
        pids: pick.pids,
        peerIds: pick.peerIds,
        injected,
        completed: error === undefined,
        exact: error === undefined && tokens.length === reference.tokens.length && tokens.every((t, j) => t === reference.tokens[j]),
        tokens: tokens.length,
        stallMs: error === undefined && after.length > 0 ? Math.max(...after) : null,
        failedAfterMs,
        ms: performance.now() - t0,
        ...(error === undefined ? {} : { error }),
        recoveries: events.slice(before)
      }
      trials.push(trial)
      say(`trial ${i}: ${pick.failure} ${pick.victim} ${pick.peerIds.map((p, j) => `${p.slice(-8)} (pid ${pick.pids[j]})`).join(' + ')} at token ${pick.killAtToken}: ` +
        (injected ? '' : '(ended before the kill token) ') + (trial.completed ? `completed, ${trial.exact ? 'exact' : 'TOKENS DIFFER'}, stall ${trial.stallMs === null ? '?' : Math.round(trial.stallMs)} ms` : `FAILED ${failedAfterMs === null ? `after ${Math.round(trial.ms)} ms` : `${Math.round(failedAfterMs)} ms after the kill`}: ${trial.error ?? ''}`))
    }
    const summary = chaosSummary(trials)
    const report = { seed: opts.seed, model: m.model.name, peers: opts.peers, faultTolerance: m.pipeline.faultTolerance, maxTokens: opts.maxTokens, sampling: opts.sampling, referenceTokens: reference.tokens.length, ...(stopped === undefined ? {} : { stopped }), summary, trials, recoveries: events }
    if (json) process.stdout.write(JSON.stringify(report) + '\n')
    else process.stdout.write(chaosReport(report) + '\n')
    if (stopped !== undefined || summary.completed < summary.trials || summary.exact < summary.trials) process.exitCode = 1
  } catch (err) {
    log.error((err as Error).message)
    throw err
  } finally {
    offRecovery()
    await m.stop()
    if (temp !== undefined) await rm(temp, { recursive: true, force: true })
  }
}
