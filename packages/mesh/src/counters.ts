/** Named counters (rejection reasons, traffic). */
export class Counters {
  private readonly counts = new Map<string, number>()

  inc (name: string, n = 1): void {
    this.counts.set(name, (this.counts.get(name) ?? 0) + n)
  }

  get (name: string): number {
    return this.counts.get(name) ?? 0
  }

  toJSON (): Record<string, number> {
    return Object.fromEntries([...this.counts].sort(([a], [b]) => a.localeCompare(b)))
  }
}
