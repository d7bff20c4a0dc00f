import { decodeObject, peerId, sameSender, uint } from '../codec.ts'
import { MAX_ELECTION_BYTES } from '../constants.ts'
import { InvalidMessageError } from '../errors.ts'

/** "Would you vote for me in `term`?" — asked before a real election; changes nobody's term. */
export interface PreVoteRequest { type: 'prevote-request', term: number, candidate: string, lastVersion: number, lastTerm: number }
/** A granted pre-vote (refusals are not sent). */
export interface PreVote { type: 'prevote', term: number, candidate: string, voter: string }
/** A candidate asks for votes in `term`; it has voted for itself. */
export interface VoteRequest { type: 'vote-request', term: number, candidate: string, lastVersion: number, lastTerm: number }
/**
 * A granted vote. `known` is the size of the voter's voting set (used only before the first
 * configuration exists); `lastVersion`/`lastTerm` is the voter's state head, so the winner
 * knows who holds the newest state.
 */
export interface Vote { type: 'vote', term: number, candidate: string, voter: string, known: number, lastVersion: number, lastTerm: number }
/** The coordinator of `term` is alive; `ready` once it holds the newest state it could find. */
export interface Heartbeat { type: 'heartbeat', term: number, coordinator: string, stateVersion: number, stateTerm: number, commitVersion: number, ready: boolean }

export type ElectionMessage = PreVoteRequest | PreVote | VoteRequest | Vote | Heartbeat

/** Validate an election message signed by `from`: the peer it speaks for must be the signer. */
export function parseElection (data: Uint8Array, from: string): ElectionMessage {
  const obj = decodeObject(data, MAX_ELECTION_BYTES)
  const term = uint(obj, 'term')
  if (term === 0) throw new InvalidMessageError('malformed', '"term" must be >= 1')
  switch (obj.type) {
    case 'prevote-request':
    case 'vote-request': {
      const candidate = peerId(obj, 'candidate')
      sameSender(candidate, from, 'candidate')
      return { type: obj.type, term, candidate, lastVersion: uint(obj, 'lastVersion'), lastTerm: uint(obj, 'lastTerm') }
    }
    case 'prevote': {
      const voter = peerId(obj, 'voter')
      sameSender(voter, from, 'voter')
      return { type: 'prevote', term, candidate: peerId(obj, 'candidate'), voter }
    }
    case 'vote': {
      const voter = peerId(obj, 'voter')
      sameSender(voter, from, 'voter')
      return { type: 'vote', term, candidate: peerId(obj, 'candidate'), voter, known: uint(obj, 'known'), lastVersion: uint(obj, 'lastVersion'), lastTerm: uint(obj, 'lastTerm') }
    }
    case 'heartbeat': {
      const coordinator = peerId(obj, 'coordinator')
      sameSender(coordinator, from, 'coordinator')
      if (typeof obj.ready !== 'boolean') throw new InvalidMessageError('malformed', '"ready" must be a boolean')
      return { type: 'heartbeat', term, coordinator, stateVersion: uint(obj, 'stateVersion'), stateTerm: uint(obj, 'stateTerm'), commitVersion: uint(obj, 'commitVersion'), ready: obj.ready }
    }
    default:
      throw new InvalidMessageError('unknown-type', `election message type "${String(obj.type)}"`)
  }
}
