// A Backend wrapper that counts what this tab computed for the mesh: positions (tokens)
// through its stage and the time spent computing them, for the page's "tokens processed"
// and "throughput" (both measured, never estimated).
import type { Backend, BatchItem, ForwardOptions, Stage, StageInput, StageOutput, StageSession } from '@shardmesh/engine'

export interface ComputeStats {
  /** Positions forwarded through this tab's layers (prompt positions and generated tokens). */
  tokens: number
  /** Forward calls (a batch counts once). */
  passes: number
  /** Milliseconds spent inside forward passes. */
  busyMs: number
  /** Layer ranges of the stages created, newest last. */
  stages: Array<[number, number]>
  /** Milliseconds of the most recent passes (at most RECENT_PASSES), oldest first. */
  recentMs: number[]
}

/** Passes whose durations `recentMs` keeps (the tab history's pass-time percentiles). */
export const RECENT_PASSES = 64

function positions (input: StageInput, dim: number): number {
  return 'tokens' in input ? input.tokens.length : input.hidden.length / dim
}

/** `inner`, with every forward pass counted into `stats`. */
export function meteredBackend (inner: Backend, stats: ComputeStats = { tokens: 0, passes: 0, busyMs: 0, stages: [], recentMs: [] }): { backend: Backend, stats: ComputeStats } {
  const timed = async <T>(n: number, fn: () => Promise<T>): Promise<T> => {
    const t0 = performance.now()
    try {
      return await fn()
    } finally {
      const ms = performance.now() - t0
      stats.busyMs += ms
      stats.recentMs.push(ms)
      if (stats.recentMs.length > RECENT_PASSES) stats.recentMs.shift()
      stats.passes++
      stats.tokens += n
    }
  }
  const backend: Backend = {
    name: inner.name,
    async createStage (init) {
      const stage = await inner.createStage(init)
      stats.stages.push([...init.layers])
      const dim = init.config.dim
      const wrapSession = (s: StageSession): StageSession => ({
        get position () { return s.position },
        forward: async (input: StageInput, options?: ForwardOptions): Promise<StageOutput> => await timed(positions(input, dim), async () => await s.forward(input, options)),
        truncate: (p: number) => { s.truncate(p) },
        close: () => { s.close() }
      })
      const sessions = new WeakMap<StageSession, StageSession>()
      const wrapped: Stage = {
        config: stage.config,
        layers: stage.layers,
        units: stage.units,
        embed: stage.embed,
        head: stage.head,
        createSession: () => {
          const inner = stage.createSession()
          const outer = wrapSession(inner)
          sessions.set(outer, inner)
          return outer
        },
        forwardBatch: async (items: BatchItem[]) => {
          const n = items.reduce((sum, it) => sum + positions(it.input, dim), 0)
          return await timed(n, async () => await stage.forwardBatch(items.map(it => ({ ...it, session: sessions.get(it.session) ?? it.session }))))
        },
        close: async () => { await stage.close() }
      }
      return wrapped
    }
  }
  return { backend, stats }
}
