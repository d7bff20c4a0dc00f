/**
 * Workgroup and tile sizes of the kernels, chosen from the adapter's limits and features
 * (`chooseTuning`) and overridable through `WebGpuBackendInit.tuning`.
 */
export interface Tuning {
  /** Invocations splitting each matmul dot product (a power of two); fixes its summation order. */
  matmulLanes: number
  /** Weight rows per matmul workgroup. */
  matmulRows: number
  /** Positions per matmul workgroup for n > 1 (prefill); decode uses 1. */
  matmulTile: number
  /** Reduce matmul lanes with one subgroupAdd; needs matmulLanes <= the smallest subgroup size. */
  subgroups: boolean
  /** Workgroup size of rmsnorm, softmax and top-k (a power of two). */
  reduceWorkgroup: number
  /** Workgroup size (keys per block) of attention. */
  attentionWorkgroup: number
  /** Workgroup size of elementwise kernels (add, swiglu, rope, embedding). */
  elementwiseWorkgroup: number
}

export interface AdapterFacts {
  maxInvocations: number
  maxWorkgroupStorage: number
  subgroups: boolean
  subgroupMinSize?: number
  fallback: boolean
}

const pow2Floor = (x: number): number => 2 ** Math.floor(Math.log2(Math.max(1, x)))

/**
 * Real GPUs with subgroups: one subgroup per matmul workgroup (lanes = the smallest subgroup
 * size), no shared memory or barriers in the reduction. Otherwise 64 lanes and a tree.
 * A fallback (CPU-emulated) adapter gets the same kernels with smaller workgroups, which
 * keeps its barriers cheap, and 8 rows per matmul workgroup, where per-workgroup overhead
 * dominates (the measurement is in the README).
 */
export function chooseTuning (facts: AdapterFacts, overrides: Partial<Tuning> = {}): Tuning {
  const maxWg = pow2Floor(facts.maxInvocations)
  const sg = facts.subgroupMinSize ?? 0
  const useSubgroups = facts.subgroups && sg >= 4 && (sg & (sg - 1)) === 0
  const tuning: Tuning = {
    matmulLanes: useSubgroups ? Math.min(sg, 64, maxWg) : Math.min(facts.fallback ? 16 : 64, maxWg),
    matmulRows: facts.fallback ? 8 : 4,
    matmulTile: 8,
    subgroups: useSubgroups,
    reduceWorkgroup: Math.min(facts.fallback ? 64 : 256, maxWg),
    attentionWorkgroup: Math.min(facts.fallback ? 16 : 64, maxWg),
    elementwiseWorkgroup: Math.min(facts.fallback ? 64 : 256, maxWg),
    ...overrides
  }
  check(tuning, facts)
  return tuning
}

function check (t: Tuning, facts: AdapterFacts): void {
  const pow2 = (x: number): boolean => Number.isInteger(x) && x >= 1 && (x & (x - 1)) === 0
  for (const key of ['matmulLanes', 'reduceWorkgroup', 'attentionWorkgroup', 'elementwiseWorkgroup'] as const) {
    if (!pow2(t[key]) || t[key] > facts.maxInvocations) throw new RangeError(`tuning.${key} = ${t[key]} must be a power of two <= ${facts.maxInvocations}`)
  }
  for (const key of ['matmulRows', 'matmulTile'] as const) {
    if (!Number.isInteger(t[key]) || t[key] < 1 || t[key] > 16) throw new RangeError(`tuning.${key} = ${t[key]} must be an integer in [1, 16]`)
  }
  if (t.subgroups && (!facts.subgroups || t.matmulLanes > (facts.subgroupMinSize ?? 0))) {
    throw new RangeError(`tuning.subgroups needs the subgroups feature and matmulLanes <= the smallest subgroup size (${facts.subgroupMinSize ?? 'unknown'})`)
  }
  if (!t.subgroups && t.matmulLanes * t.matmulRows * t.matmulTile * 4 > facts.maxWorkgroupStorage) {
    throw new RangeError(`matmul tiles of ${t.matmulLanes} lanes × ${t.matmulRows} rows × ${t.matmulTile} positions exceed ${facts.maxWorkgroupStorage} bytes of workgroup memory`)
  }
}
