/**
 * Election benchmark: a mesh of 5 peers in child processes; 20 times, SIGKILL the
 * coordinator and time (from the kill) until a new coordinator won and until every
 * survivor follows it, plus how fast the survivors marked the killed peer suspect and
 * dead. A fresh peer replaces the killed one before the next trial. Prints the
 * distribution and one JSON line. Times are recorded by the peers themselves.
 *
 *   pnpm bench:election
 *   pnpm bench:election -- --trials 50 --peers 7
 */
import { parseArgs } from 'node:util'
import { MeshHarness } from '../mesh/harness/harness.ts'
import type { PeerHandle } from '../mesh/harness/harness.ts'

const { values } = parseArgs({ options: { trials: { type: 'string', default: '20' }, peers: { type: 'string', default: '5' } } })
const TRIALS = Number(values.trials)
const N = Number(values.peers)

interface Trial { term: number, electedMs: number, allFollowMs: number, suspectMs: number, deadMs: number }

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] }
const pct = (xs: number[], p: number): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)] }

const h = new MeshHarness()
const trials: Trial[] = []
try {
  await h.start(N)
  const formed = (): boolean => {
    const live = h.live()
    const ids = live.map(p => p.id).sort().join()
    return h.agreed() !== undefined && live.every(p => [...p.snapshot().config].sort().join() === ids)
  }
  await h.waitFor(`a coordinator and a configuration of the ${N} live peers`, formed, 60_000)
  for (let t = 0; t < TRIALS; t++) {
    const before = h.agreed()!
    const victim = h.live().find(p => p.id === before.peerId)!
    const killedAt = Date.now()
    await victim.kill()
    const survivors = h.live()
    const next = await h.waitFor('a new coordinator', () => { const a = h.agreed(survivors); return a !== undefined && a.peerId !== victim.id && a.term > before.term && a }, 30_000)
    const times = await h.waitFor('every survivor recording the new term', () => {
      const at = survivors.map((p: PeerHandle) => p.history.find(r => r.term === next.term)?.at)
      return at.every(x => x !== undefined) && (at as number[])
    })
    const detect = await h.waitFor('the victim dead everywhere', () => {
      const tr = survivors.map(p => p.snapshot().members.find(m => m.peerId === victim.id)?.transitions ?? [])
      const suspect = tr.map(x => x.find(y => y.status === 'suspect' && y.at >= killedAt)?.at)
      const dead = tr.map(x => x.find(y => y.status === 'dead' && y.at >= killedAt)?.at)
      return dead.every(d => d !== undefined) && { suspect: suspect.filter((s): s is number => s !== undefined), dead: dead as number[] }
    })
    const trial = {
      term: next.term,
      electedMs: Math.min(...times) - killedAt,
      allFollowMs: Math.max(...times) - killedAt,
      suspectMs: median(detect.suspect) - killedAt,
      deadMs: median(detect.dead) - killedAt
    }
    trials.push(trial)
    process.stderr.write(`  trial ${t + 1}: term ${trial.term}, elected ${trial.electedMs} ms, all follow ${trial.allFollowMs} ms, suspect ${trial.suspectMs} ms, dead ${trial.deadMs} ms\n`)
    await h.add()
    await h.waitFor(`the replacement in a configuration of ${N}`, formed, 60_000)
  }
} finally {
  await h.close()
}

const safety = h.safety()
const stats = (xs: number[]): Record<string, number> => ({ min: Math.min(...xs), p50: median(xs), p90: pct(xs, 0.9), max: Math.max(...xs), mean: Math.round(xs.reduce((a, b) => a + b, 0) / xs.length) })
const result = {
  peers: N,
  trials: trials.length,
  electedMs: stats(trials.map(t => t.electedMs)),
  allFollowMs: stats(trials.map(t => t.allFollowMs)),
  withinTwoSeconds: trials.filter(t => t.allFollowMs <= 2000).length,
  suspectMs: stats(trials.map(t => t.suspectMs)),
  deadMs: stats(trials.map(t => t.deadMs)),
  terms: safety.terms,
  termsWithTwoCoordinators: safety.violations.length,
  samples: trials
}
const row = (name: string, s: Record<string, number>): string => `  ${name.padEnd(34)} ${[s.min, s.p50, s.p90, s.max, s.mean].map(v => String(v).padStart(6)).join(' ')}`
console.log(`coordinator failover: ${N} peers (child processes, loopback TCP), SIGKILL of the coordinator, ${trials.length} trials (Node ${process.versions.node})`)
console.log(`  ${'ms after the kill'.padEnd(34)}    min    p50    p90    max   mean`)
console.log(row('new coordinator elected', result.electedMs))
console.log(row('every survivor follows it', result.allFollowMs))
console.log(row('killed peer suspect (median peer)', result.suspectMs))
console.log(row('killed peer dead (median peer)', result.deadMs))
console.log(`  all survivors following a new coordinator within 2 s: ${result.withinTwoSeconds}/${trials.length}; terms with two coordinators: ${result.termsWithTwoCoordinators} (over ${safety.terms} terms)`)
console.log(JSON.stringify(result))
process.exitCode = safety.violations.length === 0 ? 0 : 1
