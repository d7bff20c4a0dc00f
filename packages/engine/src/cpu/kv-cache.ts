/**
 * Keys and values of one session for the layers whose attention a stage runs, each
 * `(positions, kvDim)` per layer, grown by doubling up to the model's context length so idle
 * sessions stay small.
 */
export class KvCache {
  readonly keys: Float32Array[]
  readonly values: Float32Array[]
  private readonly layers: number
  private readonly kvDim: number
  private readonly maxPositions: number
  private capacity = 0

  constructor (layers: number, kvDim: number, maxPositions: number) {
    this.layers = layers
    this.kvDim = kvDim
    this.maxPositions = maxPositions
    this.keys = new Array(layers).fill(new Float32Array(0))
    this.values = new Array(layers).fill(new Float32Array(0))
  }

  /** Make room for `positions` positions. */
  reserve (positions: number): void {
    if (positions <= this.capacity) return
    const capacity = Math.min(this.maxPositions, Math.max(positions, this.capacity * 2, 16))
    for (let l = 0; l < this.layers; l++) {
      const k = new Float32Array(capacity * this.kvDim)
      const v = new Float32Array(capacity * this.kvDim)
      k.set(this.keys[l])
      v.set(this.values[l])
      this.keys[l] = k
      this.values[l] = v
    }
    this.capacity = capacity
  }

  get bytes (): number {
    return this.capacity * this.kvDim * 4 * 2 * this.layers
  }
}
