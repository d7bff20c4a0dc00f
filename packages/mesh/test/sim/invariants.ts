import type { SimNode } from './node.ts'

interface Committed { term: number, tx: string }

/**
 * What must hold on every schedule, checked after every callback of the simulation:
 * - election safety: at most one coordinator per term (a restarted peer is a new
 *   contender: the same peer id winning a term twice across a restart counts as two), and a
 *   peer follows only the coordinator that won that term;
 * - state machine safety: an entry, once committed by a coordinator (held by a majority of
 *   its configuration), never changes, every later coordinator holds it when it starts
 *   writing (leader completeness), and a resolved `propose()` is committed;
 * - liveness (at the end): after the network healed and every peer was up for the settle
 *   period, every peer follows one coordinator in one term, and holds every committed value.
 */
export class Invariants {
  violation: string | undefined
  private readonly nodes: SimNode[]
  private readonly names: ReadonlyMap<string, string>
  private readonly log: (line: string) => void
  /** term → `name#incarnation` of its coordinator. */
  private readonly winners = new Map<number, string>()
  /** version → the committed entry. */
  private readonly committed = new Map<number, Committed>()
  /** key → value of every committed `set` (keys are never reused or deleted by the workload). */
  private readonly committedData = new Map<string, unknown>()
  /** key → term of the entry that committed it. */
  private readonly committedTerm = new Map<string, number>()
  /** `name#incarnation/term` → commit version already recorded for that coordinatorship. */
  private readonly recorded = new Map<string, number>()
  private readonly ready = new Set<string>()
  private readonly acks: Array<{ version: number, key: string, value: unknown }> = []

  constructor (nodes: SimNode[], names: ReadonlyMap<string, string>, log: (line: string) => void) {
    this.nodes = nodes
    this.names = names
    this.log = log
  }

  fail (why: string): void {
    if (this.violation !== undefined) return
    this.violation = why
    this.log(`VIOLATION ${why}`)
  }

  terms (): number { return this.winners.size }
  commits (): number { return this.committed.size }

  private name (id: string | null): string {
    return id === null ? '-' : this.names.get(id) ?? id
  }

  electionChanged (node: SimNode): void {
    const { role, term, coordinator } = node.p.election
    this.log(`${node.name} ${role} term ${term} following ${this.name(coordinator)}`)
    const tag = `${node.name}#${node.incarnation}`
    const winner = this.winners.get(term)
    if (role === 'coordinator') {
      if (winner === undefined) this.winners.set(term, tag)
      else if (winner !== tag) this.fail(`two coordinators in term ${term}: ${winner} and ${tag}`)
    } else if (coordinator !== null) {
      if (winner === undefined) this.fail(`${tag} follows ${this.name(coordinator)} in term ${term}, which nobody won`)
      else if (!winner.startsWith(`${this.name(coordinator)}#`)) this.fail(`${tag} follows ${this.name(coordinator)} in term ${term}, won by ${winner}`)
    }
  }

  acknowledged (version: number, key: string, value: unknown): void {
    this.acks.push({ version, key, value })
  }

  afterEvent (): void {
    for (const n of this.nodes) {
      if (!n.up || n.p.election.role !== 'coordinator') continue
      const { election, replication, log } = n.p
      const tag = `${n.name}#${n.incarnation}/${election.term}`
      if (replication.ready && !this.ready.has(tag)) {
        this.ready.add(tag)
        this.complete(n, 'started writing')
      }
      const last = this.recorded.get(tag) ?? 0
      if (replication.commitVersion <= last) continue
      this.recorded.set(tag, replication.commitVersion)
      for (let v = last + 1; v <= replication.commitVersion; v++) {
        const entry = log.entriesAfter(v - 1)?.[0]
        if (entry === undefined || entry.version !== v) continue // restored from a snapshot: checked through the data below
        const tx = JSON.stringify(entry.tx)
        const before = this.committed.get(v)
        if (before !== undefined && (before.term !== entry.term || before.tx !== tx)) {
          this.fail(`committed entry ${v} changed: term ${before.term} ${before.tx}, now term ${entry.term} ${tx} on ${tag}`)
          return
        }
        if (before === undefined) {
          this.committed.set(v, { term: entry.term, tx })
          if (entry.tx.op === 'set') { this.committedData.set(entry.tx.key, entry.tx.value); this.committedTerm.set(entry.tx.key, entry.term) }
        }
      }
      this.log(`${tag} commits up to ${replication.commitVersion}`)
      this.complete(n, `committed ${replication.commitVersion}`)
    }
    for (const a of this.acks.splice(0)) {
      if (this.committedData.get(a.key) !== a.value) this.fail(`propose(${a.key}) resolved with version ${a.version}, which no coordinator committed`)
    }
  }

  /**
   * Leader completeness: coordinator `n` holds every entry and value committed in its term or
   * before. (A deposed coordinator that has not heard of its successor yet may still commit
   * entries of its own term; it cannot hold what the successor committed since.)
   */
  private complete (n: SimNode, when: string): void {
    const { log, election } = n.p
    const who = `${n.name}#${n.incarnation} (term ${election.term}, version ${log.version}) ${when}`
    for (const [v, c] of this.committed) {
      if (c.term > election.term) continue
      if (v > log.version) { this.fail(`${who} lacks committed entry ${v} ${c.tx}`); return }
      const t = log.termAt(v)
      if (t !== undefined && t !== c.term) { this.fail(`${who} holds entry ${v} of term ${t}, but term ${c.term} ${c.tx} was committed`); return }
    }
    const data = log.current().data
    for (const [k, value] of this.committedData) {
      if (this.committedTerm.get(k)! > election.term) continue
      if (data[k] !== value) { this.fail(`${who} lost committed ${k}=${String(value)} (holds ${String(data[k])})`); return }
    }
  }

  /** After the healed period: one coordinator everyone follows, holding everything committed. */
  atEnd (settleMs: number): void {
    const up = this.nodes.filter(n => n.up)
    const coords = up.filter(n => n.p.election.role === 'coordinator')
    const views = up.map(n => `${n.name}:${n.p.election.role}/${n.p.election.term}/${this.name(n.p.election.coordinator)}/v${n.p.log.version}`).join(' ')
    if (coords.length !== 1) { this.fail(`${coords.length} coordinators ${settleMs} ms after the network healed: ${views}`); return }
    const c = coords[0]
    if (!up.every(n => n.p.election.coordinator === c.id && n.p.election.term === c.p.election.term)) {
      this.fail(`not every peer follows ${c.name} ${settleMs} ms after the network healed: ${views}`)
      return
    }
    for (const n of up) {
      const data = n.p.log.current().data
      for (const [k, value] of this.committedData) {
        if (data[k] !== value) { this.fail(`${n.name} lacks committed ${k}=${String(value)} ${settleMs} ms after the network healed: ${views}`); return }
      }
    }
  }
}
