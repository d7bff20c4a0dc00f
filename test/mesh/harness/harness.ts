import { startInProcess, startProcess } from './handles.ts'
import type { PeerHandle } from './handles.ts'
import type { PeerSnapshot, PeerSpec } from './types.ts'

export type { PeerHandle } from './handles.ts'
export type { PeerSnapshot, PeerSpec } from './types.ts'

/**
 * A simulated mesh of real libp2p peers on loopback: child processes and/or in-process
 * nodes, bootstrapped off the first peer (or a dedicated bootstrap node), with kills,
 * graceful stops, partitions (connection gaters), gossip faults and observation.
 * `close()` kills whatever is left — call it in afterEach.
 */
export class MeshHarness {
  readonly peers: PeerHandle[] = []
  private readonly controller = new AbortController()
  private readonly defaults: PeerSpec

  constructor (defaults: PeerSpec = {}) {
    this.defaults = defaults
  }

  async add (spec: PeerSpec = {}): Promise<PeerHandle> {
    const s = { ...this.defaults, ...spec, timing: { ...this.defaults.timing, ...spec.timing } }
    const seed = this.peers.find(p => p.alive)
    const bootstrap = s.bootstrap ?? (seed === undefined ? [] : [seed.addrs[0]])
    const peer = s.kind === 'inproc' ? await startInProcess(s, bootstrap) : await startProcess(s, bootstrap, this.controller.signal)
    this.peers.push(peer)
    return peer
  }

  /** Start `n` peers; the first is started alone so the rest bootstrap off it. */
  async start (n: number, spec: PeerSpec = {}): Promise<PeerHandle[]> {
    const out = [await this.add(spec)]
    out.push(...await Promise.all(Array.from({ length: n - 1 }, async () => await this.add(spec))))
    return out
  }

  live (): PeerHandle[] {
    return this.peers.filter(p => p.alive)
  }

  /** Poll `fn` until it returns a value other than undefined/false; throws with `what` after `timeoutMs`. */
  async waitFor<T> (what: string, fn: () => T | undefined | false, timeoutMs = 20_000): Promise<T> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const v = fn()
      if (v !== undefined && v !== false) return v
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; peers: ${JSON.stringify(this.live().map(summary))}`)
      await new Promise(resolve => setTimeout(resolve, 25))
    }
  }

  /**
   * The coordinator every peer of `group` agrees on — same peer, same term, and that peer
   * is in the group and reports itself coordinator — or undefined.
   */
  agreed (group: PeerHandle[] = this.live()): { peerId: string, term: number } | undefined {
    const snaps = group.map(p => p.snapshot())
    const first = snaps[0]
    if (first?.coordinator == null) return undefined
    if (!snaps.every(s => s.coordinator === first.coordinator && s.term === first.term)) return undefined
    const leader = snaps.find(s => s.peerId === first.coordinator)
    if (leader?.role !== 'coordinator') return undefined
    return { peerId: first.coordinator, term: first.term }
  }

  /** Peers of `group` that consider themselves coordinator. */
  coordinators (group: PeerHandle[] = this.live()): PeerHandle[] {
    return group.filter(p => p.snapshot().role === 'coordinator')
  }

  /** Cut the mesh into groups: every peer refuses (and closes) connections to the other groups. */
  async partition (groups: PeerHandle[][]): Promise<void> {
    await Promise.all(groups.flatMap((g, i) => {
      const others = groups.filter((_, j) => j !== i).flat().map(p => p.id)
      return g.filter(p => p.alive).map(async p => { await p.block(others) })
    }))
  }

  async heal (): Promise<void> {
    await Promise.all(this.live().map(async p => { await p.unblock() }))
  }

  /**
   * DESIGN §5 safety from every peer's own log: for each term, at most one peer ever
   * won it or was accepted as its coordinator. Returns the violations (empty when safe).
   */
  safety (): { terms: number, violations: string[] } {
    const byTerm = new Map<number, Set<string>>()
    for (const p of this.peers) {
      for (const r of p.history) {
        let s = byTerm.get(r.term)
        if (s === undefined) byTerm.set(r.term, s = new Set())
        s.add(r.coordinator)
      }
    }
    const violations = [...byTerm].filter(([, s]) => s.size > 1).map(([t, s]) => `term ${t}: ${[...s].join(', ')}`)
    return { terms: byTerm.size, violations }
  }

  async close (): Promise<void> {
    this.controller.abort(new Error('harness closed'))
    await Promise.all(this.peers.map(async p => { await p.kill().catch(() => {}) }))
  }
}

function summary (p: PeerHandle): Partial<PeerSnapshot> {
  const s = p.snapshot()
  return { peerId: s.peerId.slice(-6), role: s.role, term: s.term, coordinator: s.coordinator?.slice(-6) ?? null, stateVersion: s.stateVersion }
}
