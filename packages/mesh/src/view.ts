import type { ElectionRoleName, LinkKind, Member, MeshLink, MeshView } from './types.ts'

/** What the view reads of an open libp2p connection. */
export interface ViewConnection {
  remotePeer: { toString: () => string }
  remoteAddr: { toString: () => string }
  /** Round trip of the connection monitor's last ping (ms). */
  rtt?: number
  direction?: 'inbound' | 'outbound'
}

/**
 * The transport of a connection, from its remote multiaddr: `relay` (through a circuit relay,
 * `/p2p-circuit` without `/webrtc` after it), `webrtc`, `websocket` (`/ws`, `/wss`,
 * `/tls/ws`), `tcp`, else `other`.
 */
export function linkKind (remoteAddr: string): LinkKind {
  if (remoteAddr.includes('/webrtc')) return 'webrtc'
  if (remoteAddr.includes('/p2p-circuit')) return 'relay'
  if (/\/(ws|wss)(\/|$)/.test(remoteAddr)) return 'websocket'
  if (remoteAddr.includes('/tcp/')) return 'tcp'
  return 'other'
}

/** This peer's open connections, by remote peer. */
function linksByPeer (connections: ViewConnection[]): Map<string, MeshLink[]> {
  const out = new Map<string, MeshLink[]>()
  for (const c of connections) {
    const peer = c.remotePeer.toString()
    const link: MeshLink = { kind: linkKind(c.remoteAddr.toString()), ...(c.rtt === undefined ? {} : { rttMs: c.rtt }), ...(c.direction === undefined ? {} : { direction: c.direction }) }
    out.set(peer, [...(out.get(peer) ?? []), link])
  }
  return out
}

/**
 * The `GET /api/mesh` shape: coordinator, term, state version and every member this peer knows,
 * with this peer's own open connections to each (`links`: transport and ping round trip).
 */
export function meshView (coordinator: { peerId: string | null, term: number, role: ElectionRoleName }, stateVersion: number, members: Member[], now: number, connections: ViewConnection[] = []): MeshView {
  const links = linksByPeer(connections)
  return {
    coordinator: coordinator.peerId,
    term: coordinator.term,
    stateVersion,
    peers: members.map(m => ({
      peerId: m.peerId,
      role: m.role,
      runtime: m.capabilities.runtime,
      backend: m.capabilities.backend,
      throughput: m.capabilities.throughput,
      status: m.status,
      layers: m.layers,
      lastSeenMs: Math.max(0, now - m.lastSeen),
      links: links.get(m.peerId) ?? []
    }))
  }
}
