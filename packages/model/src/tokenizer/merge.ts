import { MergeQueue } from './merge-queue.ts'

/** run.c starts its best score at -1e10 and merges only strictly better pairs. */
export const NO_MERGE_SCORE = -1e10

/**
 * Applies run.c's BPE merge loop to `ids`: repeatedly merge the adjacent pair whose
 * concatenation is a piece (`pairId`) with the highest score, leftmost on ties, while that
 * score is above `NO_MERGE_SCORE`. run.c rescans every pair after each merge (O(n²));
 * this keeps the symbols in a doubly linked list and the candidate pairs in a priority
 * queue with the same order, so it does the same merges in O(n log n).
 */
export function mergePieces (
  ids: readonly number[],
  pairId: (left: number, right: number) => number | undefined,
  scores: Float32Array
): number[] {
  const n = ids.length
  const id = Int32Array.from(ids)
  const prev = new Int32Array(n)
  const next = new Int32Array(n)
  for (let i = 0; i < n; i++) {
    prev[i] = i - 1
    next[i] = i + 1 < n ? i + 1 : -1
  }

  const queue = new MergeQueue()
  const consider = (left: number, right: number): void => {
    if (left < 0 || right < 0) return
    const merged = pairId(id[left], id[right])
    if (merged === undefined || !(scores[merged] > NO_MERGE_SCORE)) return
    queue.push({ score: scores[merged], left, right, leftId: id[left], rightId: id[right], merged })
  }
  for (let i = 0; i + 1 < n; i++) consider(i, i + 1)

  while (queue.size > 0) {
    const c = queue.pop()!
    // stale: the pair was split by another merge, or one side became a different piece
    if (next[c.left] !== c.right || id[c.left] !== c.leftId || id[c.right] !== c.rightId) continue
    id[c.left] = c.merged
    const after = next[c.right]
    next[c.left] = after
    if (after >= 0) prev[after] = c.left
    next[c.right] = -1
    id[c.right] = -1
    consider(prev[c.left], c.left)
    consider(c.left, after)
  }

  const out: number[] = []
  for (let i = n > 0 ? 0 : -1; i >= 0; i = next[i]) out.push(id[i])
  return out
}
