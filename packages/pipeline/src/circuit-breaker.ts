/** Failures within this window count towards opening a peer's breaker. */
export const BREAKER_WINDOW_MS = 60_000
/** Failures within the window that open the breaker. */
export const BREAKER_THRESHOLD = 3
/** An open breaker lets one try through (half-open) after this long. */
export const BREAKER_COOLDOWN_MS = 30_000

/**
 * Per-peer circuit breaker: a peer that failed `threshold` times within `windowMs` is not
 * routed to for `cooldownMs`; then one try goes through, and a success closes it again.
 */
export class CircuitBreaker {
  private readonly failures = new Map<string, number[]>()
  private readonly openedAt = new Map<string, number>()
  private readonly now: () => number

  constructor (init: { now?: () => number } = {}) {
    this.now = init.now ?? (() => Date.now())
  }

  failure (peer: string): void {
    const t = this.now()
    const recent = (this.failures.get(peer) ?? []).filter(x => t - x < BREAKER_WINDOW_MS)
    recent.push(t)
    this.failures.set(peer, recent)
    if (recent.length >= BREAKER_THRESHOLD) this.openedAt.set(peer, t)
  }

  success (peer: string): void {
    this.failures.delete(peer)
    this.openedAt.delete(peer)
  }

  /** Whether a route may use `peer` now. */
  allows (peer: string): boolean {
    const at = this.openedAt.get(peer)
    return at === undefined || this.now() - at >= BREAKER_COOLDOWN_MS
  }

  /** Peers whose breaker is open now. */
  open (): string[] { return [...this.openedAt.keys()].filter(p => !this.allows(p)) }
}
