import type { Mesh } from '@shardmesh/mesh'
import type { Route } from './server.ts'

/** `GET /api/mesh`: `{ coordinator, term, peers: [{ peerId, runtime, backend, status, layers, lastSeenMs }], stateVersion }`. */
export function meshRoutes (mesh: Pick<Mesh, 'view'>): Record<string, Route> {
  return { 'GET /api/mesh': () => mesh.view() }
}
