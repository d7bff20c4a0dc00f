import { describe, expect, it } from 'vitest'
import { argmax, sample, uniform } from '../src/index.ts'

function softmax (logits: number[], temperature: number): number[] {
  const max = Math.max(...logits)
  const e = logits.map(l => Math.exp((l - max) / temperature))
  const s = e.reduce((a, b) => a + b, 0)
  return e.map(v => v / s)
}

describe('counter-based rng', () => {
  it('is a pure function of (seed, position)', () => {
    expect(uniform(7, 123)).toBe(uniform(7, 123))
    expect(uniform(7, 123)).not.toBe(uniform(7, 124))
    expect(uniform(7, 123)).not.toBe(uniform(8, 123))
  })

  it('is uniform on [0, 1)', () => {
    const bins = new Array(10).fill(0)
    const n = 100_000
    for (let p = 0; p < n; p++) {
      const u = uniform(42, p)
      expect(u >= 0 && u < 1).toBe(true)
      bins[Math.floor(u * 10)]++
    }
    for (const b of bins) expect(Math.abs(b - n / 10)).toBeLessThan(600) // ~6 sigma
  })
})

describe('sampling', () => {
  const logits = new Float32Array([1, 3, 3, -2, 0.5, 2.9])

  it('greedy takes the first maximum', () => {
    expect(argmax(logits)).toBe(1)
    expect(sample(logits, { temperature: 0 }, 5)).toBe(1)
  })

  it('is deterministic per (seed, position) and varies across positions', () => {
    const params = { temperature: 1, seed: 3 }
    const draws = Array.from({ length: 50 }, (_, p) => sample(logits, params, p))
    expect(Array.from({ length: 50 }, (_, p) => sample(logits, params, p))).toEqual(draws)
    expect(new Set(draws).size).toBeGreaterThan(2)
  })

  it('follows the softmax distribution at temperature 0.7', () => {
    const expected = softmax(Array.from(logits), 0.7)
    const counts = new Array(logits.length).fill(0)
    const n = 40_000
    for (let p = 0; p < n; p++) counts[sample(logits, { temperature: 0.7, seed: 11 }, p)]++
    for (let i = 0; i < logits.length; i++) expect(Math.abs(counts[i] / n - expected[i])).toBeLessThan(0.01)
  })

  it('top-k keeps only the k most likely tokens', () => {
    const seen = new Set<number>()
    for (let p = 0; p < 2000; p++) seen.add(sample(logits, { temperature: 5, topK: 2, seed: 1 }, p))
    expect([...seen].sort()).toEqual([1, 2])
  })

  it('top-p keeps the smallest nucleus reaching p', () => {
    // probabilities at T=1: tokens 1, 2 ≈ 0.31 each, 5 ≈ 0.28: p = 0.6 needs tokens 1 and 2 only
    const seen = new Set<number>()
    for (let p = 0; p < 2000; p++) seen.add(sample(logits, { temperature: 1, topP: 0.6, seed: 2 }, p))
    expect([...seen].sort()).toEqual([1, 2])
  })
})
