import { OUTPUT_LOG_MAX_BYTES } from './constants.ts'

export interface LogEntry {
  position: number
  /** Positions covered. */
  n: number
  /** Hidden states `(n, dim)`, or the token sampled after the last position (head stage). */
  data: Float32Array | number
}

/**
 * What a stage sent downstream for one session, by position (DESIGN §4): hidden states
 * `(n, dim)` per forward, or the sampled token of a head stage. Replaying it into a
 * replacement downstream stage rebuilds that stage's KV cache. Bounded by positions (the
 * context) and by bytes (`OUTPUT_LOG_MAX_BYTES`): past the byte bound the log stops and says
 * it can no longer replay (`complete` false), so recovery falls back to re-prefill.
 */
export class OutputLog {
  private readonly entries: LogEntry[] = []
  private readonly maxPositions: number
  private readonly maxBytes: number
  private positions = 0
  private bytes = 0
  private overflowed = false

  constructor (maxPositions: number, maxBytes = OUTPUT_LOG_MAX_BYTES) {
    this.maxPositions = maxPositions
    this.maxBytes = maxBytes
  }

  /** Record the output for positions `[position, position + n)`. */
  append (position: number, n: number, data: Float32Array | number): void {
    if (position + n > this.maxPositions) throw new RangeError(`output log would exceed ${this.maxPositions} positions`)
    this.truncate(position)
    if (this.overflowed) return
    const size = typeof data === 'number' ? 4 : data.byteLength
    if (this.bytes + size > this.maxBytes) { this.overflowed = true; return }
    this.entries.push({ position, n, data: typeof data === 'number' ? data : data.slice() })
    this.bytes += size
    this.positions = position + n
  }

  /** Forget positions at or after `position` (an entry that crosses it keeps its rows before). */
  truncate (position: number): void {
    while (this.entries.length > 0) {
      const last = this.entries[this.entries.length - 1]
      if (last.position + last.n <= position) break
      this.entries.pop()
      this.bytes -= typeof last.data === 'number' ? 4 : last.data.byteLength
      if (last.position < position && typeof last.data !== 'number') {
        const keep = position - last.position
        const data = last.data.slice(0, keep * (last.data.length / last.n))
        this.entries.push({ position: last.position, n: keep, data })
        this.bytes += data.byteLength
      }
    }
    this.positions = Math.min(this.positions, position)
  }

  /** Positions covered. */
  get length (): number { return this.positions }

  /** Whether every position since 0 is held (false once the byte bound was hit). */
  get complete (): boolean { return !this.overflowed }

  replay (): readonly LogEntry[] { return this.entries }

  /**
   * SHA-256 of every output at positions `<= position`, row by row (hidden states as their
   * F32 bytes, sampled tokens as i32), so replicas that computed the same agree however
   * their positions were chunked. Undefined when the log does not reach `position`.
   */
  async digest (position: number): Promise<string | undefined> {
    if (!this.complete || this.positions <= position) return undefined
    const parts: Uint8Array[] = []
    for (const e of this.entries) {
      if (e.position > position) break
      if (typeof e.data === 'number') { parts.push(new Uint8Array(Int32Array.of(e.data).buffer)); continue }
      const rows = Math.min(e.n, position + 1 - e.position)
      const bytes = new Uint8Array(e.data.buffer, e.data.byteOffset, e.data.byteLength)
      parts.push(bytes.subarray(0, rows * (e.data.byteLength / e.n)))
    }
    const all = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0))
    let at = 0
    for (const p of parts) { all.set(p, at); at += p.byteLength }
    const hash = new Uint8Array(await crypto.subtle.digest('SHA-256', all))
    return [...hash].map(b => b.toString(16).padStart(2, '0')).join('')
  }
}
