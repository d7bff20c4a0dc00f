import { array, decodeObject, isPeerId, peerId, record, sameSender, shallowJson, str, uint } from '../codec.ts'
import { MAX_STATE_BYTES, MAX_VALUE_BYTES } from '../constants.ts'
import { InvalidMessageError } from '../errors.ts'
import type { LogEntry, MeshState, Transaction } from '../types.ts'

/** New log entries from the coordinator of `term`. */
export interface Append { type: 'append', term: number, coordinator: string, entries: LogEntry[], commitVersion: number }
/** A full state (checkpoint): from the coordinator to all, or from any holder to a new coordinator that asked. */
export interface Snapshot { type: 'snapshot', term: number, sender: string, target: string | null, state: MeshState }
/** "`target`, publish your snapshot": a follower asks its coordinator, a new coordinator asks a newer holder. */
export interface SyncRequest { type: 'sync', term: number, peerId: string, target: string, version: number, stateTerm: number }

/**
 * "Coordinator, put this operator-signed record in the state" (private meshes): a ticket
 * (`admission/ticket/<peer>`) or a revocation (`admission/revoked/<peer>`). Any member may relay
 * one; the coordinator checks the operator's signature before it proposes it.
 */
export interface AdmissionRecord { type: 'admission', term: number, peerId: string, ticket?: string, revocation?: Record<string, unknown> }

export type StateMessage = Append | Snapshot | SyncRequest | AdmissionRecord

export const MAX_ENTRIES_PER_APPEND = 64
export const MAX_CONFIG = 4096
export const MAX_KEY_LENGTH = 256
/** Nesting of an application value (a plan is about 6 deep). */
export const MAX_VALUE_DEPTH = 64

function members (value: unknown, field: string): string[] {
  if (!Array.isArray(value) || value.length > MAX_CONFIG || !value.every(isPeerId)) {
    throw new InvalidMessageError('malformed', `"${field}" must be an array of at most ${MAX_CONFIG} peer ids`)
  }
  if (new Set(value).size !== value.length) throw new InvalidMessageError('malformed', `"${field}" has duplicates`)
  return value
}

/** Validate one transaction (also used on `propose`). */
export function parseTransaction (value: unknown): Transaction {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InvalidMessageError('malformed', 'a transaction must be an object')
  const tx = value as Record<string, unknown>
  switch (tx.op) {
    case 'init': return { op: 'init', members: members(tx.members, 'members') }
    case 'term': return { op: 'term', coordinator: peerId(tx, 'coordinator') }
    case 'add': return { op: 'add', peerId: peerId(tx, 'peerId') }
    case 'remove': return { op: 'remove', peerId: peerId(tx, 'peerId'), reason: str(tx, 'reason', 256) }
    case 'delete': return { op: 'delete', key: key(tx) }
    case 'set': {
      if (!('value' in tx) || tx.value === undefined) throw new InvalidMessageError('malformed', '"value" is required')
      const bytes = JSON.stringify(shallowJson(tx.value, 'value', MAX_VALUE_DEPTH)).length
      if (bytes > MAX_VALUE_BYTES) throw new InvalidMessageError('oversized', `value of ${bytes} bytes, limit ${MAX_VALUE_BYTES}`)
      return { op: 'set', key: key(tx), value: tx.value }
    }
    // String() of an object with a bad toString throws a TypeError, of a deep array a RangeError
    default: throw new InvalidMessageError('malformed', `unknown transaction op ${typeof tx.op === 'string' ? `"${tx.op.slice(0, 64)}"` : `of type ${typeof tx.op}`}`)
  }
}

function key (tx: Record<string, unknown>): string {
  const k = str(tx, 'key', MAX_KEY_LENGTH)
  if (k.length === 0) throw new InvalidMessageError('malformed', '"key" must not be empty')
  return k
}

function entry (value: unknown): LogEntry {
  if (typeof value !== 'object' || value === null) throw new InvalidMessageError('malformed', 'a log entry must be an object')
  const e = value as Record<string, unknown>
  const version = uint(e, 'version')
  const term = uint(e, 'term')
  if (version === 0 || term === 0) throw new InvalidMessageError('malformed', 'log entry version and term must be >= 1')
  return { version, term, tx: parseTransaction(e.tx) }
}

/** Validate a replicated state (a snapshot's body). */
export function parseState (value: unknown): MeshState {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InvalidMessageError('malformed', '"state" must be an object')
  const s = value as Record<string, unknown>
  let coordinator: MeshState['coordinator'] = null
  if (s.coordinator !== null) {
    const c = record(s, 'coordinator')
    coordinator = { term: uint(c, 'term'), peerId: peerId(c, 'peerId') }
  }
  return { version: uint(s, 'version'), term: uint(s, 'term'), config: members(s.config, 'config'), coordinator, data: shallowJson(record(s, 'data'), 'data', MAX_VALUE_DEPTH) as Record<string, unknown> }
}

/** Validate a state-topic message signed by `from`. */
export function parseStateMessage (data: Uint8Array, from: string): StateMessage {
  const obj = decodeObject(data, MAX_STATE_BYTES)
  const term = uint(obj, 'term')
  switch (obj.type) {
    case 'append': {
      const coordinator = peerId(obj, 'coordinator')
      sameSender(coordinator, from, 'coordinator')
      const entries = array(obj, 'entries', MAX_ENTRIES_PER_APPEND).map(entry)
      for (let i = 1; i < entries.length; i++) {
        if (entries[i].version !== entries[i - 1].version + 1) throw new InvalidMessageError('malformed', 'entries must have consecutive versions')
      }
      return { type: 'append', term, coordinator, entries, commitVersion: uint(obj, 'commitVersion') }
    }
    case 'snapshot': {
      const sender = peerId(obj, 'sender')
      sameSender(sender, from, 'sender')
      const target = obj.target === null ? null : peerId(obj, 'target')
      return { type: 'snapshot', term, sender, target, state: parseState(obj.state) }
    }
    case 'sync': {
      const id = peerId(obj, 'peerId')
      sameSender(id, from, 'peerId')
      return { type: 'sync', term, peerId: id, target: peerId(obj, 'target'), version: uint(obj, 'version'), stateTerm: uint(obj, 'stateTerm') }
    }
    case 'admission': {
      const id = peerId(obj, 'peerId')
      sameSender(id, from, 'peerId')
      const ticket = obj.ticket === undefined ? undefined : str(obj, 'ticket', 2048)
      const revocation = obj.revocation === undefined ? undefined : record(obj, 'revocation')
      if ((ticket === undefined) === (revocation === undefined)) throw new InvalidMessageError('malformed', 'an admission record has a "ticket" or a "revocation"')
      return { type: 'admission', term, peerId: id, ticket, revocation }
    }
    default:
      throw new InvalidMessageError('unknown-type', `state message type "${String(obj.type)}"`)
  }
}
