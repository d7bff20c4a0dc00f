// `GET /api/events`: the dashboard's live feed, server-sent events. Each event is a whole
// snapshot (what `GET /api/mesh` answers, plus the head's live generation figures), sent every
// EVENTS_INTERVAL_MS and soon after anything changes: a member's status, the coordinator or
// term, the replicated state (a new plan), a recovery, a generation starting or ending.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Mesh } from '@shardmesh/mesh'
import type { FaultTolerance, RecoveryEvent } from '@shardmesh/pipeline'
import type { LiveSnapshot, LiveStats } from './live.ts'
import { meshRoutes } from './mesh.ts'

/** A snapshot at least this often. */
export const EVENTS_INTERVAL_MS = 1000
/** Changes within this long of each other go out as one snapshot. */
export const EVENTS_COALESCE_MS = 100

/** One `snapshot` event. `mesh` is the `GET /api/mesh` body of this node. */
export interface EventsSnapshot {
  at: number
  self: string
  mesh: unknown
  /** Absent on a node that drives no generations. */
  live?: LiveSnapshot
}

export interface EventsInit {
  self: string
  mesh: Pick<Mesh, 'view' | 'member' | 'state' | 'addEventListener' | 'removeEventListener'>
  /** The head (a `PipelineService` fits): its recoveries are in the snapshots and push one. */
  head?: { faultTolerance: FaultTolerance, recoveries: () => RecoveryEvent[], onRecovery: (fn: (e: RecoveryEvent) => void) => () => void }
  live?: LiveStats
  /** @default EVENTS_INTERVAL_MS */
  intervalMs?: number
}

/** One client's stream: never more than one snapshot buffered past the high-water mark. */
class Subscriber {
  /** A snapshot was due while the client was behind: send the newest one once it drained. */
  private stale = false
  private readonly res: ServerResponse
  private readonly snapshot: () => string
  constructor (res: ServerResponse, snapshot: () => string) {
    this.res = res
    this.snapshot = snapshot
    res.on('drain', () => { if (this.stale) this.send() })
  }

  send (): void {
    if (this.res.destroyed || this.res.writableEnded) return
    // a client reading slower than snapshots come skips the ones it could not take: each is whole
    if (this.res.writableNeedDrain) { this.stale = true; return }
    this.stale = false
    this.res.write(`event: snapshot\ndata: ${this.snapshot()}\n\n`)
  }
}

export interface EventsHandler {
  handler: (req: IncomingMessage, res: ServerResponse) => Promise<boolean>
  /** Subscribers connected now. */
  subscribers: () => number
  /** End every stream (before the HTTP server closes). */
  stop: () => void
}

export function eventsHandler (init: EventsInit): EventsHandler {
  const meshBody = meshRoutes(init.mesh, init.head)['GET /api/mesh']
  const subscribers = new Set<Subscriber>()
  const responses = new Set<ServerResponse>()
  const snapshot = (req: IncomingMessage): string => JSON.stringify({ at: Date.now(), self: init.self, mesh: meshBody(req), ...(init.live === undefined ? {} : { live: init.live.snapshot() }) } satisfies EventsSnapshot)
  let timer: ReturnType<typeof setInterval> | undefined
  let soon: ReturnType<typeof setTimeout> | undefined
  const all = (): void => { for (const s of subscribers) s.send() }
  const changed = (): void => {
    if (subscribers.size === 0 || soon !== undefined) return
    soon = setTimeout(() => { soon = undefined; all() }, EVENTS_COALESCE_MS)
  }
  const offs: Array<() => void> = []
  const listen = (): void => {
    for (const type of ['member', 'coordinator', 'state'] as const) {
      init.mesh.addEventListener(type, changed)
      offs.push(() => { init.mesh.removeEventListener(type, changed) })
    }
    if (init.head !== undefined) offs.push(init.head.onRecovery(changed))
    if (init.live !== undefined) offs.push(init.live.onChange(changed))
    timer = setInterval(all, init.intervalMs ?? EVENTS_INTERVAL_MS)
  }
  const quiet = (): void => {
    for (const off of offs.splice(0)) off()
    clearInterval(timer)
    clearTimeout(soon)
    timer = soon = undefined
  }
  return {
    handler: async (req, res) => {
      const path = new URL(req.url ?? '/', 'http://localhost').pathname
      if (path !== '/api/events') return false
      if (req.method !== 'GET') {
        const body = JSON.stringify({ error: { message: `${req.method ?? ''} is not allowed on ${path}`, type: 'invalid_request_error', param: null, code: 'method_not_allowed' } })
        res.writeHead(405, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), allow: 'GET' })
        res.end(body)
        return true
      }
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' })
      res.write(`retry: ${init.intervalMs ?? EVENTS_INTERVAL_MS}\n\n`)
      const sub = new Subscriber(res, () => snapshot(req))
      if (subscribers.size === 0) listen()
      subscribers.add(sub)
      responses.add(res)
      res.on('close', () => {
        subscribers.delete(sub)
        responses.delete(res)
        if (subscribers.size === 0) quiet()
      })
      sub.send()
      return true
    },
    subscribers: () => subscribers.size,
    stop: () => {
      for (const res of responses) res.end()
      quiet()
    }
  }
}
