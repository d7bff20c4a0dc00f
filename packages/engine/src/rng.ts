/**
 * Counter-based RNG: the draw for (seed, position) is a pure function of both, so any
 * replica or replacement of the last stage samples the same token (DESIGN §4).
 * A murmur3-style finalizer over the key, integer ops only: identical on every JS engine.
 */
function mix (h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/** A uniform float in [0, 1) with 53 random bits, keyed by (seed, position, stream). */
export function uniform (seed: number, position: number, stream = 0): number {
  const k = mix((seed >>> 0) ^ 0x9e3779b9)
  const a = mix(k ^ mix((position >>> 0) + 0x7f4a7c15) ^ Math.imul(stream + 1, 0x27d4eb2f))
  const b = mix(a ^ 0x165667b1)
  return ((a >>> 5) * 67108864 + (b >>> 6)) / 9007199254740992
}
