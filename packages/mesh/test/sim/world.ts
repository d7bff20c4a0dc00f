import { majority } from '../../src/quorum.ts'
import { compareHeads } from '../../src/state-log.ts'
import { meshTiming } from '../../src/timing.ts'
import { Rng, VirtualClock } from './clock.ts'
import { SimNode } from './node.ts'
import { Invariants } from './invariants.ts'
import type { Plane } from '../../src/gossip.ts'
import type { NodeWorld } from './node.ts'

/** The faults of one schedule, all drawn from its seed. */
export interface SimConfig {
  nodes: number
  /** Faults happen during [0, faultMs); then the network heals, every node is up, and stays so for settleMs. */
  faultMs: number
  settleMs: number
  /** Per message and receiver, while faults are on. */
  drop: number
  duplicate: number
  /** One-way delay: base plus uniform jitter (jitter reorders messages). */
  delayMs: number
  jitterMs: number
  partitions: boolean
  crashes: boolean
  /** Mean gap between fault actions (partition, heal, crash, restart). */
  faultEveryMs: number
  /** Mean gap between proposals on the coordinator. */
  proposeEveryMs: number
  /**
   * How a crashed peer comes back: `new-id` — as a new peer joining through a live member
   * (a peer restarted without `--key`; the default); `same-id` — with its old peer id and no
   * state (`--key`: the mesh persists no term, vote or log).
   */
  restart: 'new-id' | 'same-id'
}

export interface SimResult {
  seed: number
  config: SimConfig
  /** The first invariant broken, if any. */
  violation?: string
  trace: string[]
  stats: { events: number, messages: number, terms: number, commits: number, crashes: number, partitions: number, proposals: number, livenessChecked: number }
}

/** The faults of schedule `seed`: node count, loss, delays, partitions, crashes. */
export function configFor (seed: number): SimConfig {
  const r = new Rng(seed ^ 0x5eed)
  return {
    nodes: r.pick([3, 3, 4, 5, 5, 6, 7]),
    faultMs: r.int(8_000, 30_000),
    settleMs: 20_000,
    drop: r.pick([0, 0.02, 0.1, 0.25]),
    duplicate: r.pick([0, 0, 0.02, 0.1]),
    delayMs: r.int(1, 20),
    jitterMs: r.pick([0, 5, 50, 300]),
    partitions: r.chance(0.7),
    crashes: r.chance(0.7),
    faultEveryMs: r.int(500, 4000),
    proposeEveryMs: r.int(50, 600),
    restart: 'new-id'
  }
}

/** A valid-looking peer id (the message parsers check the base58 form) for node `i`. */
function simPeerId (i: number): string {
  const b58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'
  return `12D3KooWSimPeer${'x'.repeat(28)}${b58[Math.floor(i / 58)]}${b58[i % 58]}`
}

/**
 * Run one seeded schedule: N nodes on a simulated gossip network with the schedule's
 * drops, duplicates, delays, partitions and crashes, then a healed period. Every callback
 * is followed by the invariant checks; the first violation ends the run.
 */
export async function runSchedule (seed: number, overrides: Partial<SimConfig> = {}, verbose = false): Promise<SimResult> {
  const config = { ...configFor(seed), ...overrides }
  const rng = new Rng(seed)
  const net = rng.fork()
  const clock = new VirtualClock()
  const timing = meshTiming()
  const trace: string[] = []
  const stats = { events: 0, messages: 0, terms: 0, commits: 0, crashes: 0, partitions: 0, proposals: 0, livenessChecked: 0 }
  const log = (line: string): void => { trace.push(`${String(Math.round(clock.now)).padStart(6)} ${line}`) }
  let faulty = true
  /** Partition group of each node (one group: connected). */
  let group: number[] = Array(config.nodes).fill(0)
  const index = new Map<string, number>()
  const nodes: SimNode[] = []
  const names = new Map<string, string>()
  const inv = new Invariants(nodes, names, log)

  const world: NodeWorld = {
    clock,
    timing,
    publish: (from, plane, data) => {
      const fi = index.get(from.id)!
      for (const to of nodes) {
        if (to === from || !to.up || group[index.get(to.id)!] !== group[fi]) continue
        const copies = !faulty ? 1 : net.chance(config.drop) ? 0 : net.chance(config.duplicate) ? 2 : 1
        for (let c = 0; c < copies; c++) send(from, to, plane, data)
      }
    },
    electionChanged: node => { inv.electionChanged(node) },
    rejected: (node, reason) => { if (verbose) log(`${node.name} rejects: ${reason}`) },
    fault: (node, where, err) => { inv.fail(`${node.name} threw in ${where}: ${(err as Error).stack ?? String(err)}`) }
  }

  const send = (from: SimNode, to: SimNode, plane: Plane, data: Uint8Array): void => {
    stats.messages++
    const inc = to.incarnation
    const fromId = from.id
    const delay = config.delayMs + net.range(0, faulty ? config.jitterMs : 5)
    clock.after(delay, () => {
      // lost if the receiver restarted meanwhile or a partition now separates them
      if (!to.up || to.incarnation !== inc || group[index.get(to.id)!] !== group[index.get(fromId)!]) return
      if (verbose) log(`${to.name} <- ${from.name} ${plane} ${new TextDecoder().decode(data).slice(0, 160)}`)
      to.deliver(plane, fromId, data)
    })
  }

  // node 0 is everyone's bootstrap (genesis anchor), as in a mesh started off one peer
  for (let i = 0; i < config.nodes; i++) {
    const id = simPeerId(i)
    index.set(id, i)
    names.set(id, `p${i}`)
    nodes.push(new SimNode(world, id, `p${i}`, i === 0 ? [] : [simPeerId(0)], rng.fork()))
  }
  for (const [i, n] of nodes.entries()) clock.at(i === 0 ? 0 : rng.int(50, 1500), () => { n.boot(); log(`${n.name} starts`) })

  /** Connections follow the partition: links across groups close, links within reopen. */
  const regroup = (next: number[]): void => {
    const before = group
    group = next
    for (const [i, a] of nodes.entries()) {
      for (const [j, b] of nodes.entries()) {
        if (i === j || (before[i] === before[j]) === (next[i] === next[j])) continue
        clock.after(net.int(0, 30), () => { a.connected(b.id, next[i] === next[j]) })
      }
    }
  }

  /**
   * Crash `n` only if a majority of the configuration stays up: a mesh that lost a majority
   * of its voting members for good cannot elect, by design (and new peers could only start a
   * new mesh). The configuration is the one of the newest state any peer holds.
   */
  const survivable = (n: SimNode | undefined): boolean => {
    let newest: SimNode | undefined
    for (const o of nodes) if (o.up && (newest === undefined || compareHeads(o.p.log, newest.p.log) > 0)) newest = o
    const config = newest?.p.log.config ?? []
    const up = config.filter(id => id !== n?.id && nodes.some(o => o.up && o.id === id)).length
    return up >= majority(config.length)
  }

  const crash = (n: SimNode, noisy: boolean): void => {
    n.crash()
    stats.crashes++
    log(`${n.name} crashes${noisy ? ' (connections close)' : ' (silently)'}`)
    if (noisy) for (const o of nodes) if (o !== n) clock.after(net.int(1, 30), () => { o.connected(n.id, false) })
  }

  let fresh = config.nodes
  const restart = (n: SimNode): void => {
    if (n.up) return
    if (config.restart === 'same-id') {
      n.boot()
      log(`${n.name} restarts (same peer id, no state)`)
    } else {
      const via = nodes.filter(o => o.up)
      const id = simPeerId(fresh++)
      index.set(id, index.get(n.id)!)
      names.set(id, `p${fresh - 1}`)
      const old = n.name
      n.boot({ id, name: `p${fresh - 1}`, bootstrap: via.length > 0 ? [rng.pick(via).id] : [] })
      log(`${old} restarts as a new peer ${n.name}`)
    }
    for (const o of nodes) if (o !== n && group[index.get(o.id)!] === group[index.get(n.id)!]) clock.after(net.int(5, 50), () => { o.connected(n.id, true) })
  }

  // the fault timeline
  for (let t = rng.range(500, config.faultEveryMs); t < config.faultMs; t += rng.range(config.faultEveryMs / 2, config.faultEveryMs * 1.5)) {
    const action = rng.next()
    if (config.partitions && action < 0.4) {
      const groups = rng.chance(0.8) ? 2 : 3
      const next = nodes.map(() => rng.int(0, groups - 1))
      const heal = rng.range(500, 8000)
      clock.at(t, () => { stats.partitions++; log(`partition ${next.join('')}`); regroup(next) })
      clock.at(t + heal, () => { if (faulty) { log('heal'); regroup(nodes.map(() => 0)) } })
    } else if (config.crashes && action < 0.8) {
      const victim = rng.int(0, config.nodes - 1)
      const noisy = rng.chance(0.5)
      const back = rng.range(200, 8000)
      clock.at(t, () => {
        const n = nodes[victim]
        // the coordinator is the victim half of the time: that is where the interesting cases are
        const coord = nodes.find(x => x.up && x.parts?.election.role === 'coordinator')
        const target = coord !== undefined && rng.chance(0.5) ? coord : n
        if (!target.up || !survivable(target)) return
        crash(target, noisy)
        clock.after(back, () => { if (faulty) restart(target) })
      })
    }
  }

  // proposals on whoever is coordinator and ready
  let key = 0
  const propose = (): void => {
    const c = nodes.find(n => n.up && n.parts?.election.role === 'coordinator' && n.parts.replication.ready)
    if (c !== undefined) {
      const value = ++key
      const k = `k${value}`
      stats.proposals++
      if (verbose) log(`${c.name} proposes ${k}`)
      c.p.replication.propose({ op: 'set', key: k, value }).then(v => { log(`${c.name}: ${k} committed at ${v}`); inv.acknowledged(v, k, value) }, () => {})
    }
    clock.after(rng.range(config.proposeEveryMs / 2, config.proposeEveryMs * 1.5), propose)
  }
  clock.at(1000, propose)

  // the healed period: everyone up, no loss, one group
  clock.at(config.faultMs, () => {
    faulty = false
    log('faults end: heal, restart every crashed node')
    regroup(nodes.map(() => 0))
    for (const n of nodes) restart(n)
  })
  const end = config.faultMs + config.settleMs

  for (let ev = clock.next(end); ev !== undefined && inv.violation === undefined; ev = clock.next(end)) {
    stats.events++
    ev.fn()
    // let promise continuations (Replication.onElected, propose) run before the next callback
    for (let i = 0; i < 8; i++) await Promise.resolve()
    inv.afterEvent()
  }
  clock.now = end
  // liveness is owed only while a majority of the voting configuration lives: peers that
  // came back as new peers are not its members until a coordinator adds them
  const live = inv.violation === undefined && survivable(undefined)
  if (live) { stats.livenessChecked = 1; inv.atEnd(config.settleMs) }
  else if (inv.violation === undefined) log('a majority of the configuration is gone for good: no coordinator is owed')
  stats.terms = inv.terms()
  stats.commits = inv.commits()
  for (const n of nodes) n.crash()
  return { seed, config, violation: inv.violation, trace, stats }
}
