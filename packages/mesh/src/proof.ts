import { isMajority, majority } from './quorum.ts'
import type { ElectionDeps } from './election-deps.ts'

const OBSERVED_TERMS = 8

/** Who won which term, as far as the votes and announcements this peer saw can tell. */
export class ElectionProofs {
  /** term → candidate → voters seen granting it (the candidate counts itself). */
  private readonly observed = new Map<number, Map<string, Set<string>>>()

  observe (term: number, candidate: string, voter: string): void {
    let byCandidate = this.observed.get(term)
    if (byCandidate === undefined) {
      byCandidate = new Map()
      this.observed.set(term, byCandidate)
      for (const t of this.observed.keys()) if (t < term - OBSERVED_TERMS) this.observed.delete(t)
    }
    let voters = byCandidate.get(candidate)
    if (voters === undefined) byCandidate.set(candidate, voters = new Set())
    voters.add(voter)
  }

  /**
   * Did `peer` win `term`? Yes if this peer saw a majority of its voting set grant it votes,
   * or a majority of its voting set — or of the other members it sees alive — announce it
   * as that term's coordinator, or a majority of its voting set do either. A peer that holds no state yet (a newcomer) has nothing to
   * judge by and follows the first claim; it learns the configuration from that
   * coordinator's snapshot, and from then on needs proofs. Either way a second claim for
   * an accepted term is rejected (`not-elected`).
   */
  proven (term: number, peer: string, deps: Pick<ElectionDeps, 'self' | 'head' | 'votingSet' | 'announcers' | 'aliveOthers'>): boolean {
    if (deps.head().version === 0) return true
    const set = deps.votingSet()
    const voters = this.observed.get(term)?.get(peer) ?? new Set<string>()
    if (isMajority(set, voters)) return true
    const announcers = new Set(deps.announcers(term, peer))
    announcers.add(peer)
    announcers.delete(deps.self)
    if (isMajority(set, announcers) || announcers.size >= majority(deps.aliveOthers())) return true
    // votes and announcements both say a member backs `peer` in `term`; gossip may have lost
    // some of each (seed 3146: three voters each saw too few votes and too few followers, and
    // no term could be won past the coordinator's lease-holders — so they followed no one)
    return isMajority(set, new Set([...voters, ...announcers]))
  }
}
