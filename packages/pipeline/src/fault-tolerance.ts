/**
 * Fault-tolerance levels, recovery strategies, error classes and recovery events (DESIGN §4).
 * The level says how much a running session is protected; the strategy says how a lost
 * stage is replaced. Both are mesh settings (`shardmesh start --ft-level L --recovery S`)
 * that a request may override (the `shardmesh` extension field of the API body).
 */

export type FtLevel = 'none' | 'low' | 'medium' | 'high' | 'critical'
export const FT_LEVELS: FtLevel[] = ['none', 'low', 'medium', 'high', 'critical']

export type RecoveryStrategy = 'reconnect' | 'restart' | 'failover' | 'parallel' | 'progressive' | 'coordinated'
export const RECOVERY_STRATEGIES: RecoveryStrategy[] = ['reconnect', 'restart', 'failover', 'parallel', 'progressive', 'coordinated']

/** Why a hop failed, which decides how it is recovered. */
export type ErrorClass = 'CONNECTION' | 'CRASH' | 'MEMORY' | 'TIMEOUT' | 'WEBGPU' | 'PROTOCOL' | 'LIMITED' | 'UNKNOWN'
export const ERROR_CLASSES: ErrorClass[] = ['CONNECTION', 'CRASH', 'MEMORY', 'TIMEOUT', 'WEBGPU', 'PROTOCOL', 'LIMITED', 'UNKNOWN']

export interface FaultTolerance {
  level: FtLevel
  recovery: RecoveryStrategy
}

/** @default level and strategy of a mesh that names none */
export const DEFAULT_FAULT_TOLERANCE: FaultTolerance = { level: 'medium', recovery: 'progressive' }

/** One recovery of one session at a head (`GET /api/mesh` → `recoveries`, `/metrics`). */
export interface RecoveryEvent {
  /** Local time (ms since epoch) the failure was detected. */
  at: number
  session: string
  /** Peers taken off the route. */
  failed: string[]
  /** Stage indexes (in the plan) that moved. */
  stages: number[]
  class: ErrorClass
  level: FtLevel
  strategy: RecoveryStrategy
  /** How the session resumed: the replacement's KV cache rebuilt from the upstream output log, the whole route re-prefilled, or nothing (failed). */
  path: 'replay' | 'reprefill' | 'none'
  /** From the failure's first sign (connection closed, member suspect, stream error) to the head acting on it. */
  detectionMs: number
  /** From the failure's first sign to the next token out of the new route. */
  stallMs: number
  /** Positions recomputed by the replacement (replay) or by the whole new route (re-prefill). */
  tokensReplayed: number
  ok: boolean
  /** Why it failed (when `ok` is false). */
  error?: string
}

/** Most recent recovery events kept per head. */
export const RECOVERY_HISTORY = 256

/** Bounded list of recovery events with listeners (what the head records, the API shows). */
export class RecoveryLog {
  private readonly events: RecoveryEvent[] = []
  private readonly listeners = new Set<(e: RecoveryEvent) => void>()

  record (e: RecoveryEvent): void {
    this.events.push(e)
    if (this.events.length > RECOVERY_HISTORY) this.events.shift()
    for (const fn of this.listeners) {
      try { fn(e) } catch {}
    }
  }

  list (): RecoveryEvent[] { return [...this.events] }

  onRecovery (fn: (e: RecoveryEvent) => void): () => void {
    this.listeners.add(fn)
    return () => { this.listeners.delete(fn) }
  }
}
