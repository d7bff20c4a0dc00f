import type { ErrorClass } from './fault-tolerance.ts'

/** Frame and control refusals: the input itself was bad, so moving it elsewhere would not help. */
const PROTOCOL_CODES = /^(BAD_|TRUNCATED|NON_FINITE|WRONG_|DUPLICATE_SESSION|UNKNOWN_SESSION|CONTROL|STALE|StageInputError|InvalidFrameError|InvalidControlMessageError|ContextLengthError)/

/** A stage's per-peer limits refused (peer-limits.ts): the peer is busy, not broken; later or elsewhere may serve. */
const LIMIT_CODES = new Set(['RATE_LIMITED', 'BYTES_IN_FLIGHT', 'TOO_MANY_SESSIONS'])

/**
 * The class of a session's failure (DESIGN §4), which decides whether and how it is
 * recovered, and the peer to blame when one is known.
 */
export function classify (err: unknown): { class: ErrorClass, peer?: string } {
  const e = err as Error & { code?: string, peerId?: string, class?: ErrorClass, blame?: string }
  if (e.name === 'HopLostError') return { class: e.class!, peer: e.peerId }
  if (e.name === 'StageUnreachableError') return { class: 'CONNECTION', peer: e.peerId }
  if (e.name === 'TimeoutError') return { class: 'TIMEOUT' }
  if (e.name === 'StageFailedError') {
    const code = e.code ?? ''
    const peer = e.blame ?? e.peerId
    if (code === 'UNREACHABLE' || code === 'StageUnreachableError' || code === 'NOT_SERVING' || code === 'JOINING' || code === 'STOPPED' || code === 'StageClosedError') return { class: 'CONNECTION', peer }
    if (LIMIT_CODES.has(code)) return { class: 'LIMITED', peer }
    if (/MEMORY|RangeError|OOM/i.test(code)) return { class: 'MEMORY', peer }
    if (/GPU/i.test(code)) return { class: 'WEBGPU', peer }
    if (PROTOCOL_CODES.test(code)) return { class: 'PROTOCOL', peer }
    return { class: 'UNKNOWN', peer }
  }
  return { class: 'UNKNOWN' }
}

/** Classes a recovery can help: the peer or its link failed, not the session's input. */
export function recoverable (cls: ErrorClass): boolean {
  return cls === 'CONNECTION' || cls === 'CRASH' || cls === 'TIMEOUT' || cls === 'MEMORY' || cls === 'WEBGPU' || cls === 'LIMITED'
}
