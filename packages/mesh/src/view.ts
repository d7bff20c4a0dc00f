import type { ElectionRoleName, Member, MeshView } from './types.ts'

/** The `GET /api/mesh` shape: coordinator, term, state version and every member this peer knows. */
export function meshView (coordinator: { peerId: string | null, term: number, role: ElectionRoleName }, stateVersion: number, members: Member[], now: number): MeshView {
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
      lastSeenMs: Math.max(0, now - m.lastSeen)
    }))
  }
}
