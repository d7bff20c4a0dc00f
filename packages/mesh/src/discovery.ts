import { multiaddr } from '@multiformats/multiaddr'
import type { Connection, PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { askPex } from './pex.ts'
import type { PeerHint } from './pex.ts'
import type { Member } from './types.ts'

const PEX_EVERY_MS = 3000

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
  /** Dialed when this peer has no connection at all. */
  bootstrap: string[]
  dialTimeoutMs: number
  backoffMs: number
  backoffMaxMs: number
  now: () => number
  /** A dial failed (counted, never thrown). */
  onDialError: (peerId: string, err: Error) => void
  /** A peer-exchange request failed (counted, never thrown). */
  onPexError: (peerId: string, err: Error) => void
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
  private readonly failures = new Map<string, { count: number, retryAt: number, error: string }>()
  private controller = new AbortController()
  /** Members learned through peer exchange, not (yet) heard on gossip. */
  private readonly hints = new Map<string, PeerHint>()
  private lastPexAt = 0

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

  /** Peers with an open connection that is not limited (direct, or an unlimited relay). */
  private directPeers (): Set<string> {
    return new Set(this.components.connectionManager.getConnections().filter(c => c.status === 'open' && c.limits == null).map(c => c.remotePeer.toString()))
  }

  /** Dial members we are not connected to, up to the target; the bootstrap nodes when alone. */
  topUp (members: Iterable<Readonly<Member>>): void {
    const connected = this.connectedPeers()
    if (connected.size === 0) {
      const now = this.init.now()
      for (const addr of this.init.bootstrap) {
        if (!this.dialing.has(addr) && (this.failures.get(addr)?.retryAt ?? 0) <= now) this.dial(addr, [addr])
      }
    }
    let budget = this.init.targetConnections - connected.size - this.dialing.size
    if (budget <= 0) return
    const now = this.init.now()
    const known = [...members]
    const listed = new Set(known.map(m => m.peerId))
    for (const h of this.hints.values()) if (!listed.has(h.peerId)) known.push({ ...h, status: 'alive' } as unknown as Member)
    const candidates = known.filter(m =>
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
      this.dial(m.peerId, m.addrs)
    }
    // a member reached only over a limited (relayed) connection, with a WebRTC address:
    // dial that address for a direct connection. A first dial that failed (or that fell back
    // to the relay address) is not the last word; without this the two peers would stay on
    // the relay for good, since a member with an open connection is not dialed again.
    const direct = this.directPeers()
    for (const m of known) {
      if (budget <= 0) break
      if (m.peerId === this.init.self || !connected.has(m.peerId) || direct.has(m.peerId)) continue
      const webrtc = m.addrs.filter(isWebRtc)
      const key = `${m.peerId}/webrtc`
      if (webrtc.length === 0 || this.dialing.has(key) || (this.failures.get(key)?.retryAt ?? 0) > now) continue
      budget--
      this.dial(key, webrtc)
    }
    // too few members to dial: ask a connected peer whom it knows
    if (budget > 0 && connected.size > 0 && now - this.lastPexAt >= PEX_EVERY_MS) {
      this.lastPexAt = now
      this.exchange([...connected][Math.floor(Math.random() * connected.size)])
    }
  }

  private exchange (peerId: string): void {
    const connection = this.components.connectionManager.getConnections().find(c => c.remotePeer.toString() === peerId && c.status === 'open')
    if (connection === undefined) return
    const signal = AbortSignal.any([this.controller.signal, AbortSignal.timeout(this.init.dialTimeoutMs)])
    askPex(connection, { signal })
      .then(hints => {
        for (const h of hints) if (h.peerId !== this.init.self) this.hints.set(h.peerId, h)
        if (this.hints.size > 256) for (const k of [...this.hints.keys()].slice(0, this.hints.size - 256)) this.hints.delete(k)
      })
      .catch(err => { if (!this.controller.signal.aborted) this.init.onPexError(peerId, err as Error) })
  }

  /** Dial `addrs`; failures and backoff are keyed by `key` (a peer id, or a bootstrap address). */
  private dial (key: string, addrs: readonly string[]): void {
    let targets: Multiaddr[]
    try {
      targets = addrs.map(a => multiaddr(a))
    } catch (err) {
      this.fail(key, err as Error)
      return
    }
    this.dialing.add(key)
    const signal = AbortSignal.any([this.controller.signal, AbortSignal.timeout(this.init.dialTimeoutMs)])
    this.components.connectionManager.openConnection(targets.length === 1 ? targets[0] : targets, { signal })
      .then(() => { this.failures.delete(key) })
      .catch(err => { this.fail(key, err as Error) })
      .finally(() => { this.dialing.delete(key) })
  }

  private fail (peerId: string, err: Error): void {
    const count = (this.failures.get(peerId)?.count ?? 0) + 1
    const delay = Math.min(this.init.backoffMaxMs, this.init.backoffMs * 2 ** (count - 1))
    this.failures.set(peerId, { count, retryAt: this.init.now() + delay * (0.5 + Math.random()), error: `${err.name}: ${err.message}` })
    if (!this.controller.signal.aborted) this.init.onDialError(peerId, err)
  }
}

/** A browser's WebRTC address (`…/p2p-circuit/webrtc/p2p/<id>`), not WebRTC Direct. */
function isWebRtc (addr: string): boolean {
  return /\/webrtc(\/|$)/.test(addr)
}
