// What a head's generations are doing now, for the dashboard: tokens as they come out of the
// pipeline (counted in each generation's onToken, streamed or not), generations in flight and
// the driver's timings of the last one.
import type { PipelineGenerateResult, ServedModel } from '@shardmesh/pipeline'

/** Tokens/s is counted over this trailing window. */
export const LIVE_WINDOW_MS = 2000
/** Finished generations kept for the dashboard. */
export const LIVE_RECENT = 20

/** One finished generation as the head's driver timed it. */
export interface LiveGeneration {
  /** ms since the epoch, when it returned. */
  at: number
  model: string
  promptTokens: number
  tokens: number
  finishReason: string
  recoveries: number
  prefillMs: number
  decodeMs: number
  decodeTokensPerSecond: number
  /** decodeMs per decoded token (one forward through every stage of the route). */
  msPerToken: number | null
}

export interface LiveSnapshot {
  /** Tokens this head received over the last LIVE_WINDOW_MS, per second. */
  tokensPerSecond: number
  windowMs: number
  inFlight: number
  /** Generations finished since the node started. */
  finished: number
  failed: number
  /** The latest LIVE_RECENT, oldest first. */
  recent: LiveGeneration[]
}

export interface LiveStats {
  /** The served models with their generations counted (wrap before the OpenAI handler and the recorder). */
  models: (served: () => ServedModel[]) => () => ServedModel[]
  snapshot: (now?: number) => LiveSnapshot
  /** Called when a generation starts or ends (the dashboard pushes a snapshot). */
  onChange: (fn: () => void) => () => void
}

export function liveStats (): LiveStats {
  const tokenTimes: number[] = []
  const recent: LiveGeneration[] = []
  const listeners = new Set<() => void>()
  let inFlight = 0
  let finished = 0
  let failed = 0
  const changed = (): void => { for (const fn of listeners) fn() }
  const prune = (now: number): void => {
    let drop = 0
    while (drop < tokenTimes.length && tokenTimes[drop] <= now - LIVE_WINDOW_MS) drop++
    if (drop > 0) tokenTimes.splice(0, drop)
  }
  const done = (model: string, promptTokens: number, r: PipelineGenerateResult): void => {
    const decoded = Math.max(0, r.tokens.length - 1)
    recent.push({
      at: Date.now(),
      model,
      promptTokens,
      tokens: r.tokens.length,
      finishReason: r.finishReason,
      recoveries: r.recoveries.length,
      prefillMs: r.timings.prefillMs,
      decodeMs: r.timings.decodeMs,
      decodeTokensPerSecond: r.timings.decodeTokensPerSecond,
      msPerToken: decoded === 0 ? null : r.timings.decodeMs / decoded
    })
    if (recent.length > LIVE_RECENT) recent.shift()
  }
  return {
    models: served => () => served().map(m => ({
      ...m,
      generate: async init => {
        inFlight++
        changed()
        try {
          const result = await m.generate({
            ...init,
            onToken: async id => {
              const now = Date.now()
              tokenTimes.push(now)
              prune(now)
              return await init.onToken?.(id)
            }
          })
          finished++
          done(m.id, init.promptTokens.length, result)
          return result
        } catch (err) {
          failed++
          throw err
        } finally {
          inFlight--
          changed()
        }
      }
    })),
    snapshot: (now = Date.now()) => {
      prune(now)
      return { tokensPerSecond: tokenTimes.length / (LIVE_WINDOW_MS / 1000), windowMs: LIVE_WINDOW_MS, inFlight, finished, failed, recent: [...recent] }
    },
    onChange: fn => { listeners.add(fn); return () => { listeners.delete(fn) } }
  }
}
