import type { RouteHop } from '@shardmesh/protocol'
import type { PipelineGenerateInit, PipelineGenerateResult, Repair, SessionDriver } from './driver.ts'
import { RecoveryFailedError } from './errors.ts'
import type { RecoveryEvent } from './fault-tolerance.ts'

/** Replicas of every stage at level `critical`. */
export const CRITICAL_REPLICAS = 3
/**
 * Every this many tokens the replicas' stages are audited: digests of all they sent so far
 * compared across replicas, so a corruption that has not (yet) changed a sampled token is
 * found too.
 */
export const AUDIT_EVERY = 8

export interface CriticalGenerateInit extends Omit<PipelineGenerateInit, 'route' | 'repair'> {
  /** One route per replica: the same ranges, a different peer for every stage. */
  routes: RouteHop[][]
  /** Each replica's recovery from a lost hop (a crash is recovered inside its replica). */
  repairs?: Array<Repair | undefined>
  /** A peer whose output disagreed with the majority: it is taken off and reported. */
  onEvict?: (peer: string, why: string) => void
}

interface Replica {
  live: boolean
  session?: string
  route: RouteHop[]
  /** Token of each step, as this replica sampled it. */
  votes: number[]
  result?: PipelineGenerateResult
  error?: Error
}

/**
 * Level `critical`: the session runs on `CRITICAL_REPLICAS` routes in lockstep; at each step
 * the token most replicas sampled is taken (CPU backends are bit-exact, so honest replicas
 * always agree). A replica that disagrees is stopped, and the peer at fault found by comparing
 * its stages' output digests with a replica of the majority's — the first stage whose outputs
 * differ computed wrong — and evicted. Without a majority (two live replicas that disagree)
 * the session fails with a clear error rather than guess.
 */
export async function generateCritical (driver: SessionDriver, init: CriticalGenerateInit): Promise<PipelineGenerateResult & { evicted: string[] }> {
  const { routes, promptTokens } = init
  if (routes.length < 2) throw new RecoveryFailedError('NOT_ENOUGH_REPLICAS', `level critical needs ${CRITICAL_REPLICAS} replicas of every stage; the plan has ${routes.length}`)
  const replicas: Replica[] = routes.map(route => ({ live: true, route, votes: [] }))
  const evicted: string[] = []
  const decided: number[] = []
  let stopped = false
  let wake = (): void => {}
  let changed = new Promise<void>(resolve => { wake = resolve })
  const notify = (): void => { const w = wake; changed = new Promise<void>(resolve => { wake = resolve }); w() }

  /** The step's token once every live replica voted: the majority's, or undefined when there is none. */
  async function decide (step: number): Promise<{ token?: number, voters: Replica[] }> {
    for (;;) {
      if (decided.length > step) return { token: decided[step], voters: replicas.filter(r => r.votes.length > step) }
      const live = replicas.filter(r => r.live)
      if (live.every(r => r.votes.length > step)) {
        const counts = new Map<number, number>()
        for (const r of live) counts.set(r.votes[step], (counts.get(r.votes[step]) ?? 0) + 1)
        const [token, n] = [...counts].sort((a, b) => b[1] - a[1])[0] ?? [undefined, 0]
        const majority = live.length === 1 || n * 2 > live.length ? token : undefined
        if (majority === undefined) return { voters: live }
        decided[step] = majority
        return { token: majority, voters: live }
      }
      await changed
    }
  }

  /** Find the stage of `bad` whose outputs first differ from `good`'s, by digest of everything it sent up to `position`. */
  async function culprit (bad: Replica, good: Replica, position: number): Promise<string> {
    const last = bad.route.length - 1
    for (let hop = 0; hop < last; hop++) {
      const [a, b] = await Promise.all([
        driver.digest(bad.route[hop], bad.session!, position).catch(() => 'unanswered'),
        driver.digest(good.route[hop], good.session!, position).catch(() => 'unanswered')
      ])
      if (a !== b) return bad.route[hop].peerId
    }
    return bad.route[last].peerId // every stage before agreed: the last sampled wrong
  }

  /**
   * Each replica asks its own stages for digests at this step's position; a stage whose
   * digest differs from the other replicas' of the same stage (they agree) is evicted.
   */
  const audits = new Map<number, Map<Replica, string[]>>()
  async function audit (r: Replica, step: number): Promise<void> {
    const position = promptTokens.length - 1 + step
    const mine = await Promise.all(r.route.slice(0, -1).map(async h => await driver.digest(h, r.session!, position).catch(() => 'unanswered')))
    let seen = audits.get(step)
    if (seen === undefined) audits.set(step, seen = new Map())
    seen.set(r, mine)
    notify()
    while (replicas.some(x => x.live && !seen.has(x))) await changed
    for (let hop = 0; hop < mine.length; hop++) {
      const others = [...seen].filter(([x]) => x !== r).map(([, d]) => d[hop])
      if (others.length >= 2 && others.every(d => d === others[0]) && mine[hop] !== others[0]) {
        const peer = r.route[hop].peerId
        evicted.push(peer)
        init.onEvict?.(peer, `its outputs up to position ${position} differ from the other replicas' of layers [${r.route[hop].layers.join(', ')}] (audit)`)
        r.live = false
        notify()
        return
      }
    }
  }

  const runs = replicas.map(async (r, i) => {
    try {
      r.result = await driver.generate({
        ...init,
        route: r.route,
        repair: init.repairs?.[i],
        onRoute: (session, route) => { r.session = session; r.route = route },
        onRecovery: init.onRecovery,
        onToken: async (t: number) => {
          const step = r.votes.length
          r.votes.push(t)
          notify()
          const { token } = await decide(step)
          if (token === undefined) {
            r.error = new RecoveryFailedError('NO_MAJORITY', `the replicas disagree at token ${step} and none has a majority`)
            return 'stop'
          }
          if (t !== token) {
            const good = replicas.find(x => x !== r && x.votes[step] === token)!
            const peer = await culprit(r, good, promptTokens.length - 1 + step)
            evicted.push(peer)
            init.onEvict?.(peer, `sampled ${t} where the majority sampled ${token} at token ${step}`)
            r.live = false
            notify()
            return 'stop'
          }
          if (step % AUDIT_EVERY === AUDIT_EVERY - 1) await audit(r, step)
          if (!r.live) return 'stop'
          if (stopped) return 'stop'
          // the first replica to pass a decided step hands its token on
          if (replicas.find(x => x.live && x.votes.length > step) === r) {
            if (await init.onToken?.(token) === 'stop') stopped = true
          }
          return stopped ? 'stop' : undefined
        }
      })
    } catch (err) {
      r.error = err as Error
    } finally {
      r.live = false
      notify()
    }
  })
  await Promise.all(runs)
  const ok = replicas.filter(r => r.result !== undefined && r.error === undefined && !evicted.some(p => r.route.some(h => h.peerId === p)))
  const best = ok.sort((a, b) => b.votes.length - a.votes.length)[0]
  if (best?.result === undefined) {
    const why = replicas.map(r => r.error?.message).filter(m => m !== undefined).join('; ')
    throw new RecoveryFailedError('NO_MAJORITY', `no replica of the session finished with the majority's tokens${why === '' ? '' : `: ${why}`}`)
  }
  const recoveries: RecoveryEvent[] = replicas.flatMap(r => r.result?.recoveries ?? [])
  return { ...best.result, tokens: decided.slice(0, best.result.tokens.length), recoveries, evicted }
}
