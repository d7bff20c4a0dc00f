import { uniform } from './rng.ts'
import type { SamplingParams } from './types.ts'

/** Index of the largest value; the lowest index wins ties (as llama2.c). */
export function argmax (logits: Float32Array): number {
  let best = 0
  let max = logits[0]
  for (let i = 1; i < logits.length; i++) {
    if (logits[i] > max) { max = logits[i]; best = i }
  }
  return best
}

/**
 * Choose the token that follows `position - 1`, i.e. the token at `position`.
 * Temperature scales the logits, then top-k and top-p (nucleus) filter the softmax, then a
 * draw from the counter-based RNG keyed by (seed, position) picks one.
 */
export function sample (logits: Float32Array, params: SamplingParams, position: number): number {
  const temperature = params.temperature ?? 0
  if (temperature <= 0) return argmax(logits)
  const n = logits.length
  // candidates sorted by logit, descending; ties by index for determinism
  const order = Array.from({ length: n }, (_, i) => i)
  order.sort((a, b) => logits[b] - logits[a] || a - b)
  const topK = params.topK ?? 0
  const k = topK > 0 ? Math.min(topK, n) : n
  const max = logits[order[0]]
  const probs = new Float64Array(k)
  let sum = 0
  for (let i = 0; i < k; i++) {
    probs[i] = Math.exp((logits[order[i]] - max) / temperature)
    sum += probs[i]
  }
  const topP = params.topP ?? 1
  let kept = k
  if (topP < 1) {
    let cumulative = 0
    for (let i = 0; i < k; i++) {
      cumulative += probs[i] / sum
      if (cumulative >= topP) { kept = i + 1; break }
    }
  }
  let keptSum = 0
  for (let i = 0; i < kept; i++) keptSum += probs[i]
  const r = uniform(params.seed ?? 0, position) * keptSum
  let cdf = 0
  for (let i = 0; i < kept; i++) {
    cdf += probs[i]
    if (r < cdf) return order[i]
  }
  return order[kept - 1]
}
