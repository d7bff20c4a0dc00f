/**
 * What a stage sent downstream for one session, by position (DESIGN §4): hidden states
 * `(n, dim)` per forward, or the sampled token of a head stage. Replaying it to a
 * replacement downstream stage rebuilds that stage's KV cache. Bounded by the context.
 */
export class OutputLog {
  private readonly entries: Array<{ position: number, data: Float32Array | number }> = []
  private readonly maxPositions: number
  private positions = 0

  constructor (maxPositions: number) {
    this.maxPositions = maxPositions
  }

  /** Record the output for positions `[position, position + n)`. */
  append (position: number, n: number, data: Float32Array | number): void {
    if (this.positions + n > this.maxPositions) throw new RangeError(`output log would exceed ${this.maxPositions} positions`)
    this.truncate(position)
    this.entries.push({ position, data: typeof data === 'number' ? data : data.slice() })
    this.positions = position + n
  }

  /** Forget entries at or after `position`. */
  truncate (position: number): void {
    while (this.entries.length > 0 && this.entries[this.entries.length - 1].position >= position) this.entries.pop()
    this.positions = Math.min(this.positions, position)
  }

  /** Positions covered. */
  get length (): number { return this.positions }

  replay (): ReadonlyArray<{ position: number, data: Float32Array | number }> { return this.entries }
}
