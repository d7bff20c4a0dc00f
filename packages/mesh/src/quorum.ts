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
