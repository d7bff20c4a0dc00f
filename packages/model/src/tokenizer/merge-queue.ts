/**
 * A binary max-heap of candidate merges for `mergePieces`, ordered like run.c's scan:
 * higher score first, and on equal scores the pair whose left symbol is leftmost.
 */
export interface Candidate {
  /** Score of the merged piece. */
  score: number
  /** Index of the left symbol (its position in the initial sequence, so order is preserved). */
  left: number
  /** Index of the right symbol. */
  right: number
  /** Ids of the two symbols when the candidate was made; stale if either has changed. */
  leftId: number
  rightId: number
  /** Id of the merged piece. */
  merged: number
}

function before (a: Candidate, b: Candidate): boolean {
  return a.score > b.score || (a.score === b.score && a.left < b.left)
}

export class MergeQueue {
  private readonly items: Candidate[] = []

  get size (): number {
    return this.items.length
  }

  push (c: Candidate): void {
    const items = this.items
    let i = items.length
    items.push(c)
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!before(c, items[parent])) break
      items[i] = items[parent]
      i = parent
    }
    items[i] = c
  }

  /** Removes and returns the best candidate, or undefined when empty. */
  pop (): Candidate | undefined {
    const items = this.items
    const top = items[0]
    const last = items.pop()
    if (items.length === 0 || last === undefined) return top
    const n = items.length
    let i = 0
    while (true) {
      const l = 2 * i + 1
      if (l >= n) break
      const r = l + 1
      const child = r < n && before(items[r], items[l]) ? r : l
      if (!before(items[child], last)) break
      items[i] = items[child]
      i = child
    }
    items[i] = last
    return top
  }
}
