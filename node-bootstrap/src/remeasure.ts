import type { Capabilities, Mesh } from '@shardmesh/mesh'
import { CliError } from './errors.ts'
import { logger } from './log.ts'

type Values = Record<string, string | boolean | undefined>

/** Seconds between re-runs of a peer's decode benchmark (`--remeasure`). */
export const REMEASURE_DEFAULT_S = 30

/** `--remeasure SECONDS` in ms (0: measure at join only). */
export function remeasureMs (values: Values): number {
  if (values.remeasure === undefined) return REMEASURE_DEFAULT_S * 1000
  const s = Number(values.remeasure)
  if (!Number.isFinite(s) || s < 0 || s > 86_400) throw new CliError(`--remeasure takes seconds (0–86400; 0 = at join only), got "${String(values.remeasure)}"`)
  return Math.round(s * 1000)
}

export interface RemeasureInit {
  mesh: Pick<Mesh, 'setCapabilities' | 'members'>
  /** This peer's id (its own row of `members()` says its load). */
  self: string
  /** The join benchmark: a short real decode on this peer's backend. */
  measure: () => Promise<Capabilities>
  everyMs: number
}

/**
 * Re-runs the peer's decode benchmark every `everyMs` while the peer is idle (no session on
 * its stage server or head: the load it announces) and announces the new throughput, so
 * every node's history records it and a peer slowed after it joined is seen. A busy peer
 * skips the run (it would measure its own traffic and slow it down).
 */
export function remeasureWhileIdle (init: RemeasureInit): { stop: () => void } {
  if (init.everyMs <= 0) return { stop: () => {} }
  const log = logger('bench')
  let running = false
  const timer = setInterval(() => {
    if (running) return
    const load = init.mesh.members().find(m => m.peerId === init.self)?.load ?? 0
    if (load > 0) return
    running = true
    init.measure()
      .then(caps => {
        init.mesh.setCapabilities(caps)
        log.debug(`decode ${caps.throughput?.decodeTokensPerSecond ?? 0} tok/s (${caps.throughput?.model ?? '-'})`)
      })
      .catch(err => { log.warn(`re-measuring throughput failed: ${(err as Error).message}`) })
      .finally(() => { running = false })
  }, init.everyMs)
  timer.unref?.()
  return { stop: () => { clearInterval(timer) } }
}
