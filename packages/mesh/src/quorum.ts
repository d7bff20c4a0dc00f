/**
 * Who votes, and how many votes make a majority.
 *
 * Once the replicated state has a configuration (the `init` entry of the first coordinator,
 * then one `add`/`remove` at a time, each only after the previous one is committed), the
 * voting set is that configuration — the membership as it was agreed before any partition,
 * not as one side of a partition sees it. A minority side keeps counting the members it
 * cannot reach, so it can never gather a majority; two majorities of configurations that
 * differ by one member always share a peer, and a peer votes once per term, so no term can
 * have two coordinators.
 *
 * Before the first configuration exists (genesis) the voting set is every member this peer
 * sees alive, at least `expectedMembers`, widened by what each voter reports it sees
 * (`known`), so a candidate that sees few peers still needs a majority of the largest view.
 * Views alone cannot stop two groups that have not met yet from each electing a coordinator
 * in term 1, so a genesis majority must also hold a majority of the candidate's *anchors*
 * (`GenesisAnchors`): the bootstrap node's for every peer that joined through it, directly
 * or through other peers. Every such peer needs that node's vote, it votes once per term,
 * and once it holds a configuration it never votes in a genesis again. After genesis the
 * anchors play no part.
 */
export interface VotingSet {
  members: ReadonlySet<string>
  size: number
  genesis: boolean
}

/**
 * Every member this peer has seen alive while it held no configuration: the genesis voting
 * set counts them even after they went silent, as the anchors do. With only the members
 * alive now, a bootstrap node cut off from peers that had elected a coordinator (with its
 * vote) and committed a configuration it never received saw its view shrink to itself and
 * won a genesis of its own (simulator seeds 3268, 3594).
 */
export class GenesisView {
  private readonly seen = new Set<string>()

  /** `peerId` is alive; remembered only while `configured` is false (the set stops growing once it is not needed). */
  note (peerId: string, configured: boolean): void {
    if (!configured) this.seen.add(peerId)
  }

  /** The members a genesis counts: those alive now and every one seen before. */
  members (alive: Iterable<string>): Set<string> {
    return new Set([...alive, ...this.seen])
  }
}

export function votingSet (config: readonly string[], aliveKnown: Iterable<string>, self: string, expectedMembers: number): VotingSet {
  if (config.length > 0) return { members: new Set(config), size: config.length, genesis: false }
  const members = new Set(aliveKnown)
  members.add(self)
  return { members, size: Math.max(members.size, expectedMembers), genesis: true }
}

/**
 * At genesis, do `voters` hold a majority of the `anchors`? (Always true once a configuration
 * exists.) Anchors that seem dead still count: under load a live bootstrap can look dead for
 * a moment, and dropping it let groups that had not met elect three coordinators in term 1.
 */
export function anchored (set: VotingSet, voters: ReadonlySet<string>, anchors: ReadonlySet<string> | null): boolean {
  if (!set.genesis) return true
  if (anchors === null || anchors.size === 0) return false
  return [...anchors].filter(a => voters.has(a)).length >= majority(anchors.size)
}

/**
 * A peer's genesis anchors, transitively: a peer without bootstrap peers (the bootstrap
 * node) anchors itself; any other peer takes the anchors its bootstrap peers announce (their
 * own, worked out the same way), so every peer that joined a mesh — through its bootstrap
 * node or through any member — needs the bootstrap node's vote for a genesis. Anchoring a
 * peer on its bootstrap peer itself let a stateless member and a newcomer joining through
 * it hold a genesis of their own while the bootstrap node already had a configuration
 * (simulator seed 2044). Until every bootstrap peer's anchors are known, `get()` is null and
 * no genesis election can be won.
 */
export class GenesisAnchors {
  private readonly bootstrap: ReadonlySet<string>
  private readonly learned = new Map<string, readonly string[]>()
  private resolved: ReadonlySet<string> | null = null

  /** `bootstrap`: peer ids of the bootstrap addresses (this peer among them counts as a root). */
  constructor (self: string, bootstrap: Iterable<string>) {
    this.bootstrap = new Set(bootstrap)
    if (this.bootstrap.size === 0) this.resolved = new Set([self])
    else if (this.bootstrap.has(self)) this.learned.set(self, [self])
    this.resolve()
  }

  /** `peer` announced its anchors. */
  learn (peer: string, anchors: readonly string[]): void {
    if (this.resolved !== null || !this.bootstrap.has(peer) || this.learned.has(peer)) return
    this.learned.set(peer, anchors)
    this.resolve()
  }

  get (): ReadonlySet<string> | null { return this.resolved }

  /** The `anchors` field of this peer's full announcements (absent until known). */
  profile (): { anchors?: string[] } {
    return this.resolved === null ? {} : { anchors: [...this.resolved] }
  }

  private resolve (): void {
    if (this.resolved !== null || this.learned.size < this.bootstrap.size) return
    this.resolved = new Set([...this.learned.values()].flat())
  }
}

function fnv (s: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193)
  return h >>> 0
}

/** `self`'s place among `peers` (itself included or not) in an order shuffled by `term`, `first` ahead of the rest. */
export function electionSlot (self: string, term: number, peers: string[], first?: ReadonlySet<string>): { rank: number, count: number } {
  const all = [...new Set([...peers, self])]
  const key = (p: string): number => fnv(`${p}/${term}`) / 2 + (first === undefined || first.has(p) ? 0 : 2 ** 31)
  const mine = key(self)
  const rank = all.filter(p => p !== self && (key(p) < mine || (key(p) === mine && p < self))).length
  return { rank, count: all.length }
}

export function majority (size: number): number {
  return Math.floor(size / 2) + 1
}

/**
 * Do `voters` make a majority of `set`? At genesis every voter counts and widens the set;
 * `reportedSizes` are the voters' own voting-set sizes.
 */
export function isMajority (set: VotingSet, voters: ReadonlySet<string>, reportedSizes: Iterable<number> = []): boolean {
  if (!set.genesis) {
    let n = 0
    for (const v of voters) if (set.members.has(v)) n++
    return n >= majority(set.size)
  }
  const union = new Set([...set.members, ...voters])
  let size = Math.max(set.size, union.size)
  for (const k of reportedSizes) size = Math.max(size, k)
  return voters.size >= majority(size)
}
