import type { Mesh } from '@shardmesh/mesh'
import { currentPlan, distrusted, planView } from '@shardmesh/pipeline'
import type { AuditRecord, FaultTolerance, RecoveryEvent } from '@shardmesh/pipeline'
import type { Route } from './server.ts'

/**
 * `GET /api/mesh`: `{ coordinator, term, peers: [{ peerId, runtime, backend, status, layers, load, lastSeenMs }],
 * stateVersion, plan: { version, strategy, stages: [{ range, primary, standbys, reason }] } | null }`.
 * `layers` are the ranges a peer holds; the plan says what each serves. A node that drives
 * sessions (a pipeline head) adds `faultTolerance: { level, recovery }` and `recoveries`, its
 * RecoveryEvents oldest first (see @shardmesh/pipeline `RecoveryEvent`). `distrusted`: peers the
 * coordinator recorded as failing to serve what they claim (no stage until `until`), with why.
 * `audits`: the throughput audits this node ran as coordinator, the latest per peer (claimed
 * and measured tok/s, whether the tokens were checked, strikes).
 */
export function meshRoutes (mesh: Pick<Mesh, 'view' | 'member' | 'state'>, head?: { faultTolerance: FaultTolerance, recoveries: () => RecoveryEvent[], audit?: { audits: () => AuditRecord[] } }): Record<string, Route> {
  return {
    'GET /api/mesh': () => {
      const view = mesh.view()
      const plan = currentPlan(mesh.state())
      return {
        ...view,
        peers: view.peers.map(p => ({ ...p, load: mesh.member(p.peerId)?.load ?? 0 })),
        plan: plan === undefined ? null : planView(plan),
        distrusted: [...distrusted(mesh.state())].map(([peerId, e]) => ({ peerId, ...e })),
        ...(head === undefined ? {} : { faultTolerance: head.faultTolerance, recoveries: head.recoveries() }),
        ...(head?.audit === undefined ? {} : { audits: head.audit.audits() })
      }
    }
  }
}
