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
 * in term 1, so a genesis majority must also hold a majority of the candidate's *anchors*:
 * the peers of its bootstrap addresses (itself when it has none, i.e. the bootstrap node).
 * Every peer that joins through the same bootstrap node needs that node's vote, and it
 * votes once per term. After genesis the anchors play no part.
 */
export interface VotingSet {
  members: ReadonlySet<string>
  size: number
  genesis: boolean
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
export function anchored (set: VotingSet, voters: ReadonlySet<string>, anchors: ReadonlySet<string>): boolean {
  if (!set.genesis || anchors.size === 0) return true
  return [...anchors].filter(a => voters.has(a)).length >= majority(anchors.size)
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
