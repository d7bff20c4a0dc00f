import { describe, expect, it } from 'vitest'
import { BREAKER_COOLDOWN_MS, BREAKER_THRESHOLD, BREAKER_WINDOW_MS, CircuitBreaker } from '../src/circuit-breaker.ts'

describe('circuit breaker', () => {
  it('opens after THRESHOLD failures within the window, lets one try through after the cooldown, closes on success', () => {
    let now = 0
    const b = new CircuitBreaker({ now: () => now })
    for (let i = 1; i < BREAKER_THRESHOLD; i++) { b.failure('p'); now += 10 }
    expect(b.allows('p')).toBe(true)
    b.failure('p')
    expect(b.allows('p')).toBe(false)
    expect(b.open()).toEqual(['p'])
    expect(b.allows('q')).toBe(true) // per peer
    now += BREAKER_COOLDOWN_MS
    expect(b.allows('p')).toBe(true) // half-open
    b.success('p')
    b.failure('p')
    expect(b.allows('p')).toBe(true)
  })

  it('forgets failures older than the window', () => {
    let now = 0
    const b = new CircuitBreaker({ now: () => now })
    for (let i = 0; i < BREAKER_THRESHOLD - 1; i++) b.failure('p')
    now += BREAKER_WINDOW_MS + 1
    b.failure('p')
    expect(b.allows('p')).toBe(true)
  })
})
