import type { Mesh } from '@shardmesh/mesh'
import type { RouteHop } from '@shardmesh/protocol'
import type { CircuitBreaker } from './circuit-breaker.ts'
import { ACK_TIMEOUT_MS, PREPARE_TIMEOUT_MS, QUICK_PREPARE_MS, RECONNECT_WAIT_MS } from './constants.ts'
import type { RecoveryDecision, RecoveryRequest, Repair, SessionDriver } from './driver.ts'
import { routeFromPlan } from './driver.ts'
import { NumericsMismatchError, RecoveryFailedError } from './errors.ts'
import type { FaultTolerance, RecoveryStrategy } from './fault-tolerance.ts'
import { numericsOf } from './numerics.ts'
import { currentPlan } from './plan-state.ts'
import { distrusted } from './distrust.ts'
import type { Plan } from './plan-types.ts'
import { spanKey, spanOf, spanText } from './span.ts'

export interface MeshRepairInit {
  driver: Pick<SessionDriver, 'prepare'>
  mesh: Pick<Mesh, 'state' | 'member' | 'members'>
  /** The model's name (what stages check). */
  model: string
  self: string
  faultTolerance: FaultTolerance
  breaker: CircuitBreaker
  /** Where a peer is dialed. */
  addrsOf: (peerId: string) => string[]
}

const usable = (init: MeshRepairInit, peer: string, lost: Set<string>): boolean => {
  if (lost.has(peer) || !init.breaker.allows(peer) || distrusted(init.mesh.state()).has(peer)) return false
  if (peer === init.self) return true
  const m = init.mesh.member(peer)
  return m !== undefined && m.status === 'alive'
}

/** A member's numerics class as it announced it; undefined for this peer itself or a member no longer known. */
const classOf = (init: MeshRepairInit, peer: string): string | undefined => {
  const backend = init.mesh.member(peer)?.capabilities.backend
  return backend === undefined ? undefined : numericsOf(backend)
}

/** Two peers known to compute with different numerics (the exactness guard; unknown classes are checked by the `prepared` answer's backend). */
const differ = (init: MeshRepairInit, a: string, b: string): boolean => {
  const ca = classOf(init, a)
  const cb = classOf(init, b)
  return ca !== undefined && cb !== undefined && ca !== cb
}

/**
 * Where a re-prefill on `next` would compute a layer with other numerics than `previous` did:
 * a description of the first such layer, or undefined when every layer keeps its class.
 */
function numericsMoved (init: MeshRepairInit, previous: RouteHop[], next: RouteHop[]): string | undefined {
  for (const a of previous) {
    for (const b of next) {
      if (b.layers[0] >= a.layers[1] || b.layers[1] <= a.layers[0] || !differ(init, a.peerId, b.peerId)) continue
      const l = Math.max(a.layers[0], b.layers[0])
      return `layer ${l} ran on ${a.peerId} (${classOf(init, a.peerId)!}); the new plan puts it on ${b.peerId} (${classOf(init, b.peerId)!}), so the tokens could differ`
    }
  }
  return undefined
}

/** The strategy used: the level bounds what may be tried (`low`: only the same peer again). */
export function effectiveStrategy (ft: FaultTolerance): RecoveryStrategy {
  if (ft.level === 'low') return ft.recovery === 'restart' ? 'restart' : 'reconnect'
  return ft.recovery
}

/**
 * The head's recovery on a mesh: replacements come from the plan (the stage's standbys, then
 * the newest plan's primary of that range, then any member announcing the range), each asked
 * to `prepare` the range before the session moves; `reconnect`/`restart` wait a bounded time
 * for the same peer; `coordinated` waits for the coordinator's next plan and re-prefills on
 * it. A replacement, a promoted mirror or a re-prefill route computing a layer with other numerics
 * (`numericsOf`) than the peer it replaces is refused (exactness guard).
 */
/**
 * The route with each stage's first standby as its mirror (`parallel`, and `progressive` at
 * level high): every frame a hop is sent goes to its mirror too, so a lost hop's mirror takes
 * over holding the session. Only live standbys that are not on the route.
 */
export function withMirrors (route: RouteHop[], plan: Plan, mesh: Pick<Mesh, 'member'>, addrsOf: (peerId: string) => string[]): RouteHop[] {
  const onRoute = new Set(route.map(h => h.peerId))
  const used = new Set<string>()
  return route.map((h, i) => {
    const m = plan.stages[i]?.standbys.find(p => !onRoute.has(p) && !used.has(p) && mesh.member(p)?.status === 'alive')
    if (m === undefined) return h
    used.add(m)
    return { ...h, mirror: { peerId: m, addrs: addrsOf(m) } }
  })
}

export function meshRepair (init: MeshRepairInit): Repair {
  return async (req: RecoveryRequest): Promise<RecoveryDecision> => {
    const strategy = effectiveStrategy(init.faultTolerance)
    const lost = new Set(req.lost)
    if (req.attempt === 0) for (const p of lost) init.breaker.failure(p)
    if (strategy === 'coordinated') return await coordinated(init, req, lost)
    const hop = (i: number, peerId: string): RouteHop => ({ peerId, addrs: peerId === req.route[i].peerId ? req.route[i].addrs : init.addrsOf(peerId), ...spanOf(req.route[i]) })
    // one lost hop after another: a peer chosen for one is not a candidate for the next (one session state per peer)
    const route: Array<RouteHop | undefined> = []
    const warm: number[] = []
    for (const [i, h] of req.route.entries()) route.push(await choose(h, i, [...route, ...req.route.slice(i)]))
    async function choose (h: RouteHop, i: number, taken: Array<RouteHop | undefined>): Promise<RouteHop | undefined> {
      if (!lost.has(h.peerId)) return h
      // a mirror was sent everything the lost hop was: it takes over holding the session, nothing to replay
      if (h.mirror !== undefined && (strategy === 'parallel' || strategy === 'progressive') && usable(init, h.mirror.peerId, lost) && !differ(init, h.mirror.peerId, h.peerId)) {
        warm.push(i)
        return { peerId: h.mirror.peerId, addrs: h.mirror.addrs, ...spanOf(h) }
      }
      if (strategy === 'reconnect' || strategy === 'restart') return await sameAgain(init, hop(i, h.peerId), req.signal, RECONNECT_WAIT_MS)
      const onRoute = new Set(taken.filter(x => x !== undefined).map(x => x.peerId))
      if (strategy !== 'progressive') return await replacement(init, req, i, lost, onRoute, hop, strategy)
      // progressive: the same peer if it answers at once (a dropped link), else another
      try { return await sameAgain(init, hop(i, h.peerId), req.signal, 0) } catch {}
      try { return await replacement(init, req, i, lost, onRoute, hop, init.faultTolerance.level === 'medium' ? 'failover' : 'parallel') } catch {}
      return undefined
    }
    if (route.every(h => h !== undefined)) {
      for (const h of route) init.breaker.success(h!.peerId)
      return { route: route as RouteHop[], path: 'replay', strategy, warm }
    }
    // progressive, and nobody can take a lost range now: the same peers back (restart), or the
    // coordinator's re-plan around them (ranges merged onto the survivors), whichever comes first
    const race = new AbortController()
    const signal = req.signal === undefined ? race.signal : AbortSignal.any([req.signal, race.signal])
    const back = (async (): Promise<RecoveryDecision> => ({
      route: await Promise.all(req.route.map(async (h, i) => route[i] ?? await sameAgain(init, hop(i, h.peerId), signal, RECONNECT_WAIT_MS))),
      path: 'replay',
      strategy,
      warm
    }))()
    try {
      return await Promise.any([back, coordinated(init, { ...req, signal }, lost)])
    } catch (err) {
      throw (err as AggregateError).errors?.[0] ?? err
    } finally {
      race.abort()
    }
  }
}

/** The same peer, once it is alive again and serves the range (tried until `waitMs` passed, with backoff and jitter). */
async function sameAgain (init: MeshRepairInit, hop: RouteHop, signal: AbortSignal | undefined, waitMs: number): Promise<RouteHop> {
  const deadline = Date.now() + waitMs
  let delay = 50
  for (;;) {
    signal?.throwIfAborted()
    if (init.breaker.allows(hop.peerId) && init.mesh.member(hop.peerId)?.status !== 'dead') {
      try {
        // short tries: a peer that hangs must not hold the wait; one that is loading its range answers a later try
        await init.driver.prepare(hop, init.model, { signal, timeoutMs: Math.max(QUICK_PREPARE_MS, Math.min(2 * QUICK_PREPARE_MS, deadline - Date.now())) })
        return hop
      } catch {}
    }
    if (Date.now() >= deadline) throw new RecoveryFailedError('NOT_BACK', `${hop.peerId} did not come back within ${waitMs} ms`)
    await new Promise(resolve => setTimeout(resolve, delay * (1 + Math.random())))
    delay = Math.min(delay * 2, 1000)
  }
}

async function replacement (init: MeshRepairInit, req: RecoveryRequest, i: number, lost: Set<string>, onRoute: Set<string>, hop: (i: number, p: string) => RouteHop, strategy: RecoveryStrategy): Promise<RouteHop> {
  const range = req.route[i].layers
  const plan = currentPlan(init.mesh.state())
  const stage = plan?.stages.find(s => spanKey({ layers: s.range, units: s.units }) === spanKey(req.route[i]))
  const holders = init.mesh.members().filter(m => m.layers.some(([a, b]) => a <= range[0] && b >= range[1])).map(m => m.peerId)
  // a peer already on the route stays on its own hop (a session has one state per peer)
  const candidates = [...new Set([...(stage?.standbys ?? []), ...(stage === undefined ? [] : [stage.primary]), ...holders])]
    .filter(p => usable(init, p, lost) && !onRoute.has(p))
  const lostPeer = req.route[i].peerId
  const want = init.mesh.member(lostPeer)?.capabilities.backend.kind
  let lastError: Error | undefined
  for (const p of candidates) {
    const h = hop(i, p)
    try {
      // a warm standby serves the range already; a cold one fetches it first
      const got = await init.driver.prepare(h, init.model, { signal: req.signal, timeoutMs: strategy === 'parallel' || holders.includes(p) ? ACK_TIMEOUT_MS : PREPARE_TIMEOUT_MS })
      if ((want !== undefined && got.backend !== want) || differ(init, p, lostPeer)) {
        lastError = new NumericsMismatchError(`${p} computes layers [${range.join(', ')}] on ${classOf(init, p) ?? got.backend}; the lost stage ran on ${classOf(init, lostPeer) ?? want ?? '?'}, so the tokens could differ`)
        continue
      }
      return h
    } catch (err) {
      if (req.signal?.aborted === true) throw err
      init.breaker.failure(p)
      lastError = err as Error
    }
  }
  if (lastError instanceof NumericsMismatchError) throw lastError
  throw new RecoveryFailedError('NO_REPLACEMENT', `no peer can take over layers ${spanText(req.route[i])} (candidates: ${candidates.length === 0 ? 'none alive' : candidates.join(', ')})${lastError === undefined ? '' : `: ${lastError.message}`}`)
}

/** Wait for the coordinator's plan to route around the lost peers, then re-prefill on it. */
async function coordinated (init: MeshRepairInit, req: RecoveryRequest, lost: Set<string>): Promise<RecoveryDecision> {
  const deadline = Date.now() + PREPARE_TIMEOUT_MS
  let mismatch: NumericsMismatchError | undefined
  for (;;) {
    req.signal?.throwIfAborted()
    const plan: Plan | undefined = currentPlan(init.mesh.state())
    // a new session: any primary alive now will do, a lost peer that came back (respawned with its key) too
    if (plan !== undefined && plan.stages.every(s => usable(init, s.primary, new Set()))) {
      const route = routeFromPlan(plan, p => p === req.route.find(h => h.peerId === p)?.peerId ? req.route.find(h => h.peerId === p)!.addrs : init.addrsOf(p))
      // every layer must keep its numerics class (a plan that moved one may move it back: the lost peer respawned)
      const moved = numericsMoved(init, req.route, route)
      mismatch = moved === undefined ? undefined : new NumericsMismatchError(moved)
      if (mismatch === undefined) {
        try {
          // short tries: a primary still loading its range answers a later one
          await Promise.all(route.map(async h => await init.driver.prepare(h, init.model, { signal: req.signal, timeoutMs: ACK_TIMEOUT_MS })))
          return { route, path: 'reprefill', strategy: 'coordinated' }
        } catch (err) {
          if (req.signal?.aborted === true) throw err
        }
      }
    }
    if (Date.now() >= deadline && mismatch !== undefined) throw mismatch
    if (Date.now() >= deadline) throw new RecoveryFailedError('NO_PLAN', `the coordinator published no plan around ${[...lost].join(', ')} within ${PREPARE_TIMEOUT_MS} ms`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}
