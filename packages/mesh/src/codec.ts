import { InvalidMessageError } from './errors.ts'

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

/** A gossip payload: one JSON object, UTF-8. */
export function encodeMessage (msg: object): Uint8Array {
  return encoder.encode(JSON.stringify(msg))
}

/** Parse a payload of at most `maxBytes` into an object with a string `type`. */
export function decodeObject (data: Uint8Array, maxBytes: number): Record<string, unknown> {
  if (data.byteLength > maxBytes) throw new InvalidMessageError('oversized', `${data.byteLength} bytes, limit ${maxBytes}`)
  let value: unknown
  try {
    value = JSON.parse(decoder.decode(data))
  } catch {
    throw new InvalidMessageError('malformed', 'not UTF-8 JSON')
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InvalidMessageError('malformed', 'not a JSON object')
  const obj = value as Record<string, unknown>
  if (typeof obj.type !== 'string') throw new InvalidMessageError('malformed', 'no string "type"')
  return obj
}

function bad (field: string, what: string): never {
  throw new InvalidMessageError('malformed', `"${field}" must be ${what}`)
}

/** A whole number in [0, 2^53). */
export function uint (obj: Record<string, unknown>, field: string): number {
  const v = obj[field]
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) bad(field, 'a whole number >= 0')
  return v
}

/** A finite number >= 0. */
export function nonNegative (obj: Record<string, unknown>, field: string): number {
  const v = obj[field]
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) bad(field, 'a finite number >= 0')
  return v
}

export function str (obj: Record<string, unknown>, field: string, maxLength: number): string {
  const v = obj[field]
  if (typeof v !== 'string' || v.length > maxLength) bad(field, `a string of at most ${maxLength} characters`)
  return v
}

export function bool (obj: Record<string, unknown>, field: string): boolean {
  const v = obj[field]
  if (typeof v !== 'boolean') bad(field, 'a boolean')
  return v
}

export function record (obj: Record<string, unknown>, field: string): Record<string, unknown> {
  const v = obj[field]
  if (typeof v !== 'object' || v === null || Array.isArray(v)) bad(field, 'an object')
  return v as Record<string, unknown>
}

export function array (obj: Record<string, unknown>, field: string, maxLength: number): unknown[] {
  const v = obj[field]
  if (!Array.isArray(v) || v.length > maxLength) bad(field, `an array of at most ${maxLength} items`)
  return v
}

/**
 * A JSON value nested at most `maxDepth` levels (checked without recursion): deeper values
 * would overflow the stack of JSON.stringify when the state is sized or published again.
 */
export function shallowJson (value: unknown, field: string, maxDepth: number): unknown {
  let level: unknown[] = [value]
  for (let depth = 0; level.length > 0; depth++) {
    if (depth > maxDepth) bad(field, `JSON nested at most ${maxDepth} levels deep`)
    level = level.flatMap(v => typeof v === 'object' && v !== null ? Object.values(v) : [])
  }
  return value
}

/** base58btc CIDv0/identity multihash peer ids (`12D3KooW…`, `Qm…`, `16Uiu2…`). */
const PEER_ID = /^[1-9A-HJ-NP-Za-km-z]{40,64}$/

export function isPeerId (v: unknown): v is string {
  return typeof v === 'string' && PEER_ID.test(v)
}

export function peerId (obj: Record<string, unknown>, field: string): string {
  const v = obj[field]
  if (!isPeerId(v)) bad(field, 'a peer id')
  return v
}

export function peerIdOrNull (obj: Record<string, unknown>, field: string): string | null {
  return obj[field] === null ? null : peerId(obj, field)
}

/** The sender named inside the payload must be the peer that signed it. */
export function sameSender (claimed: string, from: string, field: string): void {
  if (claimed !== from) throw new InvalidMessageError('sender-mismatch', `"${field}" ${claimed} is not the signer ${from}`)
}

/** A record of string → string (e.g. adapter info), bounded. */
export function stringMap (value: unknown, field: string, maxKeys: number, maxLength: number): Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) bad(field, 'an object')
  const entries = Object.entries(value as Record<string, unknown>)
  if (entries.length > maxKeys) bad(field, `an object of at most ${maxKeys} keys`)
  for (const [k, v] of entries) {
    if (k.length > maxLength || typeof v !== 'string' || v.length > maxLength) bad(field, `string values of at most ${maxLength} characters`)
  }
  return value as Record<string, string>
}

/** A record of string → finite number (e.g. WebGPU limits), bounded. */
export function numberMap (value: unknown, field: string, maxKeys: number): Record<string, number> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) bad(field, 'an object')
  const entries = Object.entries(value as Record<string, unknown>)
  if (entries.length > maxKeys) bad(field, `an object of at most ${maxKeys} keys`)
  for (const [k, v] of entries) {
    if (k.length > 64 || typeof v !== 'number' || !Number.isFinite(v)) bad(field, 'finite numbers')
  }
  return value as Record<string, number>
}
