// What the page reads of `GET /api/events` snapshots (node-bootstrap/src/http/events.ts): the
// `GET /api/mesh` body of the node serving the page, and its live generation figures.
// the head's own types of its live feed (type-only: nothing of node-bootstrap is bundled)
import type { LiveSnapshot } from '../../node-bootstrap/src/http/live.ts'

export type { LiveSnapshot }

export type LinkKind = 'webrtc' | 'relay' | 'websocket' | 'tcp' | 'other'

export interface Peer {
  peerId: string
  role: string
  runtime: { name: string, version?: string }
  backend: { kind: string, adapter?: { vendor?: string, architecture?: string } }
  throughput?: { model: string, decodeTokensPerSecond: number }
  status: 'alive' | 'suspect' | 'dead'
  layers: Array<[number, number]>
  lastSeenMs: number
  load: number
  links: Array<{ kind: LinkKind, rttMs?: number, direction?: string }>
}

export interface Stage { range: [number, number], primary: string, standbys: string[], reason: string }

export interface Recovery {
  at: number
  session: string
  /** The peers whose loss this recovery answered. */
  failed: string[]
  stages: number[]
  class: string
  level: string
  strategy: string
  path: string
  detectionMs: number
  stallMs: number
  tokensReplayed: number
  ok: boolean
  error?: string
}

export interface MeshBody {
  coordinator: string | null
  term: number
  stateVersion: number
  peers: Peer[]
  plan: { version: number, strategy: string, stages: Stage[] } | null
  faultTolerance?: { level: string, recovery: string }
  recoveries?: Recovery[]
}


export interface Snapshot {
  at: number
  self: string
  mesh: MeshBody
  live?: LiveSnapshot
}
