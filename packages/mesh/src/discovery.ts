import { multiaddr } from '@multiformats/multiaddr'
import type { Connection, PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Member } from './types.ts'

/** The part of libp2p's connection manager discovery uses. */
export interface DialComponents {
  connectionManager: {
    openConnection: (peer: PeerId | Multiaddr | Multiaddr[], options?: { signal?: AbortSignal }) => Promise<Connection>
    getConnections: (peerId?: PeerId) => Connection[]
  }
}

export interface DiscoveryInit {
  self: string
  targetConnections: number
  dialTimeoutMs: number
  backoffMs: number
  backoffMaxMs: number
  now: () => number
  /** A dial failed (counted, never thrown). */
  onDialError: (peerId: string, err: Error) => void
}

/**
 * Discovery through the membership topic: announcements carry each member's addresses,
 * and a peer dials members it is not connected to (alive ones first, then suspect and dead
 * ones, which may only be behind a healed partition) until it holds `targetConnections`
 * connections, so the mesh stays connected when the bootstrap node goes away. Failed dials
 * (undialable transports, a dead peer, the WebRTC dial race) back off exponentially and retry.
 */
export class Discovery {
  private readonly init: DiscoveryInit
  private readonly components: DialComponents
  private readonly dialing = new Set<string>()
  private readonly failures = new Map<string, { count: number, retryAt: number }>()
  private controller = new AbortController()

  constructor (components: DialComponents, init: DiscoveryInit) {
    this.components = components
    this.init = init
  }

  stop (): void {
    this.controller.abort()
    this.controller = new AbortController()
  }

  private connectedPeers (): Set<string> {
    return new Set(this.components.connectionManager.getConnections().filter(c => c.status === 'open').map(c => c.remotePeer.toString()))
  }

  /** Dial alive members we are not connected to, up to the target. */
  topUp (members: Iterable<Readonly<Member>>): void {
    const connected = this.connectedPeers()
    let budget = this.init.targetConnections - connected.size - this.dialing.size
    if (budget <= 0) return
    const now = this.init.now()
    const candidates = [...members].filter(m =>
      m.peerId !== this.init.self && m.addrs.length > 0 &&
      !connected.has(m.peerId) && !this.dialing.has(m.peerId) && (this.failures.get(m.peerId)?.retryAt ?? 0) <= now)
    // random order, so that 50 peers do not all dial the same few; alive members first, then
    // suspect and dead ones (a partition heals only if someone dials across it)
    for (let i = candidates.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [candidates[i], candidates[j]] = [candidates[j], candidates[i]]
    }
    const rank = { alive: 0, suspect: 1, dead: 2 }
    candidates.sort((a, b) => rank[a.status] - rank[b.status])
    for (const m of candidates) {
      if (budget-- <= 0) break
      this.dial(m)
    }
  }

  private dial (member: Readonly<Member>): void {
    let addrs: Multiaddr[]
    try {
      addrs = member.addrs.map(a => multiaddr(a))
    } catch (err) {
      this.fail(member.peerId, err as Error)
      return
    }
    this.dialing.add(member.peerId)
    const signal = AbortSignal.any([this.controller.signal, AbortSignal.timeout(this.init.dialTimeoutMs)])
    this.components.connectionManager.openConnection(addrs, { signal })
      .then(() => { this.failures.delete(member.peerId) })
      .catch(err => { this.fail(member.peerId, err as Error) })
      .finally(() => { this.dialing.delete(member.peerId) })
  }

  private fail (peerId: string, err: Error): void {
    const count = (this.failures.get(peerId)?.count ?? 0) + 1
    const delay = Math.min(this.init.backoffMaxMs, this.init.backoffMs * 2 ** (count - 1))
    this.failures.set(peerId, { count, retryAt: this.init.now() + delay * (0.5 + Math.random()) })
    if (!this.controller.signal.aborted) this.init.onDialError(peerId, err)
  }
}
