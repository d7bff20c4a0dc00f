// One snapshot of the tab as a peer: what the page shows and what tests read
// (`globalThis.shardmeshPeer.status()`).
import { currentPlan } from '@shardmesh/pipeline'
import type { RecoveryEvent } from '@shardmesh/pipeline'
import type { TabRecorderStats } from '@shardmesh/history/tab'
import type { Detected } from './capabilities.ts'
import type { ClockStats } from './worker-clock.ts'
import type { ComputeStats } from './metered.ts'
import type { BrowserPeer } from './peer.ts'

export type PeerState = 'detecting' | 'measuring' | 'joining' | 'joined' | 'fetching' | 'serving' | 'standby' | 'left' | 'error'

export interface PeerStatus {
  state: PeerState
  /** `document.visibilityState`: a hidden tab must keep its heartbeats and keep serving. */
  visibility: string
  error?: string
  peerId?: string
  bootstrap: string[]
  coordinator: string | null
  term: number
  role: string
  /** Connected peers, and how many of them over a direct WebRTC connection. */
  connections: number
  webrtc: number
  members: number
  model?: string
  planVersion?: number
  /** This tab's stage in the plan (index, layer range) when it is a primary. */
  stage?: { index: number, of: number, range: [number, number] }
  /** Stages this tab stands by for. */
  standbyFor: number[]
  backend: string
  /** Where forward passes run. */
  computeIn: 'worker' | 'main'
  /** What runs the page's timers (the mesh's heartbeats): the clock Worker, or the page's own. */
  clock: ClockStats
  adapter?: string
  detected?: Detected
  /** Join benchmark, decode tokens/s. */
  benchTokensPerSecond?: number
  compute: ComputeStats
  /** Tokens per second of busy compute time (tokens / busyMs) on this tab's stage. */
  servingTokensPerSecond?: number
  /** The current stage's fetch; `cachedBytes` of `receivedBytes` came from the IndexedDB cache. */
  fetch: { parts: number, partsDone: number, receivedBytes: number, totalBytes: number, cachedBytes: number }
  recoveries: RecoveryEvent[]
  /** The tab's IndexedDB history: records stored, summaries published (or why there is none). */
  history?: TabRecorderStats | { error: string }
}

export function snapshot (base: Omit<PeerStatus, 'visibility' | 'coordinator' | 'term' | 'role' | 'connections' | 'webrtc' | 'members' | 'standbyFor' | 'recoveries' | 'servingTokensPerSecond'>, peer: BrowserPeer | undefined): PeerStatus {
  const compute = base.compute
  const serving = compute.busyMs > 0 ? Math.round(compute.tokens / compute.busyMs * 1000 * 10) / 10 : undefined
  const out: PeerStatus = { ...base, visibility: document.visibilityState, coordinator: null, term: 0, role: 'none', connections: 0, webrtc: 0, members: 0, standbyFor: [], recoveries: [], servingTokensPerSecond: serving }
  if (peer === undefined || base.state === 'left') return out
  const mesh = peer.node.services.mesh
  const c = mesh.coordinator()
  const self = peer.node.peerId.toString()
  const conns = peer.node.getConnections().filter(x => x.status === 'open')
  out.coordinator = c.peerId
  out.term = c.term
  out.role = c.role
  out.connections = new Set(conns.map(x => x.remotePeer.toString())).size
  out.webrtc = new Set(conns.filter(x => x.multiplexer === '/webrtc' && x.limits == null).map(x => x.remotePeer.toString())).size
  out.members = mesh.members().filter(m => m.status === 'alive').length
  const plan = currentPlan(mesh.state())
  if (plan !== undefined) {
    out.model = plan.model
    out.planVersion = plan.version
    const i = plan.stages.findIndex(s => s.primary === self)
    if (i >= 0) out.stage = { index: i, of: plan.stages.length, range: plan.stages[i].range }
    out.standbyFor = plan.stages.flatMap((s, k) => s.standbys.includes(self) ? [k] : [])
  }
  out.recoveries = peer.pipeline.recoveries()
  return out
}
