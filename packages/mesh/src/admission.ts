import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import type { PrivateKey, PublicKey } from '@libp2p/interface'

/**
 * Private meshes (issue 13). A private mesh belongs to an operator key (Ed25519); its mesh id
 * is `private-<operator peer id>`, so the operator's public key is read from the mesh id itself
 * and open meshes (any other id) never share topics with it. The operator signs *tickets*:
 * `{ mesh, peer, roles, issued, expires }`. A member presents its ticket in its full membership
 * announcements; peers without a valid one are ignored by the election (no vote, no candidacy),
 * the planner (no stage, unless `compute`) and stage servers (no session; a head needs `head`).
 * The operator revokes a peer's tickets issued up to a time with a signed *revocation*, kept in
 * the replicated state under `admission/revoked/<peer id>`; a ticket issued after it admits the
 * peer again.
 *
 * A ticket travels as one URL-safe string: base64url(JSON payload) `.` base64url(signature).
 */

export type AdmissionRole = 'compute' | 'head'
export const ADMISSION_ROLES: readonly AdmissionRole[] = ['compute', 'head']

export interface Ticket {
  mesh: string
  peer: string
  roles: AdmissionRole[]
  /** ms since epoch */
  issued: number
  expires: number
}

/** An operator's revocation of `peer`'s tickets issued at or before `before` (ms since epoch). */
export interface Revocation {
  mesh: string
  peer: string
  before: number
  /** base64url Ed25519 signature of `revocationBytes(…)` by the operator key. */
  sig: string
}

export const PRIVATE_MESH_PREFIX = 'private-'
/** Replicated-state key prefix of revocations (`admission/revoked/<peer id>`). */
export const REVOKED_KEY_PREFIX = 'admission/revoked/'
/** Replicated-state key prefix of tickets the operator published (`admission/ticket/<peer id>`): a running peer is admitted without a restart. */
export const TICKET_KEY_PREFIX = 'admission/ticket/'
/** Longest ticket string accepted (an Ed25519 ticket is ~350 characters). */
export const MAX_TICKET_CHARS = 2048

export type TicketFault = 'malformed' | 'bad-signature' | 'wrong-mesh' | 'wrong-peer' | 'expired' | 'not-private'

/** A ticket or revocation that does not admit: `reason` says why (also the rejection counter, prefixed `ticket-`). */
export class InvalidTicketError extends Error {
  name = 'InvalidTicketError'
  readonly reason: TicketFault
  constructor (reason: TicketFault, message: string) {
    super(message)
    this.reason = reason
  }
}

/** The peer id (string) of a key: the operator's, or a peer's to admit. */
export function peerIdOfKey (key: PrivateKey): string {
  return peerIdFromPrivateKey(key).toString()
}

/** Is `id` a peer id (as `shardmesh admit PEERID` takes)? */
export function isPeerIdString (id: string): boolean {
  try {
    peerIdFromString(id)
    return true
  } catch {
    return false
  }
}

/** The mesh id of the private mesh of an operator (its peer id). */
export function privateMeshId (operatorPeerId: string): string {
  return `${PRIVATE_MESH_PREFIX}${operatorPeerId}`
}

export function isPrivateMeshId (meshId: string): boolean {
  return meshId.startsWith(PRIVATE_MESH_PREFIX)
}

/** The operator public key a private mesh id names. */
export function operatorKeyOf (meshId: string): PublicKey {
  if (!isPrivateMeshId(meshId)) throw new InvalidTicketError('not-private', `mesh "${meshId.slice(0, 80)}" is not private (its id does not start with ${PRIVATE_MESH_PREFIX})`)
  let key: PublicKey | undefined
  try {
    key = peerIdFromString(meshId.slice(PRIVATE_MESH_PREFIX.length)).publicKey
  } catch (err) {
    throw new InvalidTicketError('malformed', `mesh id "${meshId.slice(0, 80)}" does not name an operator peer id: ${(err as Error).message}`)
  }
  if (key?.type !== 'Ed25519') throw new InvalidTicketError('malformed', `mesh id "${meshId.slice(0, 80)}" does not name an Ed25519 operator key`)
  return key
}

const enc = new TextEncoder()
const dec = new TextDecoder('utf-8', { fatal: true })

function toBase64Url (bytes: Uint8Array): string {
  let s = ''
  for (const b of bytes) s += String.fromCharCode(b)
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

function fromBase64Url (s: string, what: string): Uint8Array {
  if (!/^[A-Za-z0-9_-]*$/.test(s)) throw new InvalidTicketError('malformed', `${what} is not base64url`)
  const bin = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - s.length % 4) % 4))
  return Uint8Array.from(bin, c => c.charCodeAt(0))
}

function revocationBytes (r: Omit<Revocation, 'sig'>): Uint8Array {
  return enc.encode(`shardmesh-revocation\n${r.mesh}\n${r.peer}\n${r.before}`)
}

/** Sign a ticket with the operator key. */
export async function issueTicket (operator: PrivateKey, ticket: Ticket): Promise<string> {
  const payload = enc.encode(JSON.stringify({ mesh: ticket.mesh, peer: ticket.peer, roles: ticket.roles, issued: ticket.issued, expires: ticket.expires }))
  return `${toBase64Url(payload)}.${toBase64Url(await operator.sign(payload))}`
}

function positiveTime (v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) throw new InvalidTicketError('malformed', `ticket "${field}" must be a time in ms since epoch`)
  return v
}

/** Decode a ticket string without checking its signature (what `shardmesh peer --ticket` reads the mesh id from). */
export function decodeTicket (token: string): Ticket {
  if (typeof token !== 'string' || token.length > MAX_TICKET_CHARS) throw new InvalidTicketError('malformed', `a ticket is a string of at most ${MAX_TICKET_CHARS} characters`)
  const parts = token.trim().split('.')
  if (parts.length !== 2) throw new InvalidTicketError('malformed', 'a ticket is PAYLOAD.SIGNATURE (base64url)')
  let obj: unknown
  try {
    obj = JSON.parse(dec.decode(fromBase64Url(parts[0], 'ticket payload')))
  } catch (err) {
    if (err instanceof InvalidTicketError) throw err
    throw new InvalidTicketError('malformed', `ticket payload is not JSON: ${(err as Error).message}`)
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new InvalidTicketError('malformed', 'ticket payload must be an object')
  const t = obj as Record<string, unknown>
  if (typeof t.mesh !== 'string' || !isPrivateMeshId(t.mesh) || t.mesh.length > 256) throw new InvalidTicketError('malformed', 'ticket "mesh" must be a private mesh id')
  if (typeof t.peer !== 'string' || t.peer.length === 0 || t.peer.length > 128) throw new InvalidTicketError('malformed', 'ticket "peer" must be a peer id')
  if (!Array.isArray(t.roles) || t.roles.length === 0 || t.roles.length > ADMISSION_ROLES.length || !t.roles.every(r => ADMISSION_ROLES.includes(r)) || new Set(t.roles).size !== t.roles.length) {
    throw new InvalidTicketError('malformed', `ticket "roles" must be distinct roles of ${ADMISSION_ROLES.join(', ')}`)
  }
  const issued = positiveTime(t.issued, 'issued')
  const expires = positiveTime(t.expires, 'expires')
  return { mesh: t.mesh, peer: t.peer, roles: t.roles as AdmissionRole[], issued, expires }
}

/**
 * Check a ticket string: well formed, signed by the operator of `meshId`, for `meshId` (and
 * `peerId` when given), not expired at `now`. Throws `InvalidTicketError` saying which.
 */
export async function verifyTicket (token: string, expect: { meshId: string, peerId?: string, now?: number }): Promise<Ticket> {
  const operator = operatorKeyOf(expect.meshId)
  const ticket = decodeTicket(token)
  const [payload, sig] = token.trim().split('.')
  if (!await operator.verify(fromBase64Url(payload, 'ticket payload'), fromBase64Url(sig, 'ticket signature'))) {
    throw new InvalidTicketError('bad-signature', `ticket for ${ticket.peer.slice(0, 64)} is not signed by the operator of ${expect.meshId}`)
  }
  // the signature covers `mesh`, so a ticket of another operator's mesh fails above; this catches a copied payload
  if (ticket.mesh !== expect.meshId) throw new InvalidTicketError('wrong-mesh', `ticket is for mesh ${ticket.mesh}, not ${expect.meshId}`)
  if (expect.peerId !== undefined && ticket.peer !== expect.peerId) throw new InvalidTicketError('wrong-peer', `ticket is for peer ${ticket.peer}, presented by ${expect.peerId}`)
  const now = expect.now ?? Date.now()
  if (ticket.expires <= now) throw new InvalidTicketError('expired', `ticket of ${ticket.peer} expired at ${new Date(ticket.expires).toISOString()}`)
  return ticket
}

export async function signRevocation (operator: PrivateKey, r: Omit<Revocation, 'sig'>): Promise<Revocation> {
  return { mesh: r.mesh, peer: r.peer, before: r.before, sig: toBase64Url(await operator.sign(revocationBytes(r))) }
}

/** Check a revocation (a replicated-state value): well formed and signed by the operator of `meshId`. */
export async function verifyRevocation (value: unknown, meshId: string): Promise<Revocation> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InvalidTicketError('malformed', 'a revocation must be an object')
  const r = value as Record<string, unknown>
  if (r.mesh !== meshId) throw new InvalidTicketError('wrong-mesh', `revocation is for mesh ${String(r.mesh).slice(0, 80)}, not ${meshId}`)
  if (typeof r.peer !== 'string' || r.peer.length === 0 || r.peer.length > 128) throw new InvalidTicketError('malformed', 'revocation "peer" must be a peer id')
  if (typeof r.sig !== 'string' || r.sig.length > 256) throw new InvalidTicketError('malformed', 'revocation "sig" must be base64url')
  const rev = { mesh: meshId, peer: r.peer, before: positiveTime(r.before, 'before'), sig: r.sig }
  if (!await operatorKeyOf(meshId).verify(revocationBytes(rev), fromBase64Url(rev.sig, 'revocation signature'))) {
    throw new InvalidTicketError('bad-signature', `revocation of ${rev.peer} is not signed by the operator of ${meshId}`)
  }
  return rev
}

/**
 * One peer's admission view of a private mesh: the verified tickets members presented and the
 * verified revocations in the replicated state. `admitted()` is synchronous (the election and
 * the planner ask it often); verification happens as tickets and revocations arrive.
 */
export class Admission {
  readonly meshId: string
  private readonly tickets = new Map<string, { token: string, ticket: Ticket }>()
  private readonly revoked = new Map<string, number>()
  /** The state values verified (or refused) last, so an unchanged state costs no verification. */
  private readonly seenRevocations = new Map<string, unknown>()
  private readonly seenTickets = new Map<string, unknown>()
  private readonly now: () => number

  constructor (meshId: string, now: () => number = Date.now) {
    operatorKeyOf(meshId) // a bad private mesh id fails at start
    this.meshId = meshId
    this.now = now
  }

  /**
   * A member presented `token` (in its announcement, or the replicated state holds it): keep it
   * once verified, unless a newer valid ticket of that peer is kept already. Throws `InvalidTicketError`.
   */
  async present (peerId: string, token: string): Promise<Ticket> {
    const known = this.tickets.get(peerId)
    if (known?.token === token) return known.ticket
    const ticket = await verifyTicket(token, { meshId: this.meshId, peerId, now: this.now() })
    if (known === undefined || known.ticket.issued < ticket.issued || known.ticket.expires <= this.now()) this.tickets.set(peerId, { token, ticket })
    return ticket
  }

  /** The ticket string kept for `peerId` (valid or not by now). */
  token (peerId: string): string | undefined { return this.tickets.get(peerId)?.token }

  /**
   * Read the tickets and revocations of the replicated state's `data`; returns the number
   * refused (bad signature or form, expired).
   */
  async syncState (data: Readonly<Record<string, unknown>>): Promise<number> {
    let refused = 0
    for (const [k, value] of Object.entries(data)) {
      if (!k.startsWith(TICKET_KEY_PREFIX) || this.seenTickets.get(k) === value) continue
      this.seenTickets.set(k, value)
      try {
        await this.present(k.slice(TICKET_KEY_PREFIX.length), value as string)
      } catch {
        refused++
      }
    }
    const keys = new Set(Object.keys(data).filter(k => k.startsWith(REVOKED_KEY_PREFIX)))
    for (const k of [...this.seenRevocations.keys()]) {
      if (!keys.has(k)) { this.seenRevocations.delete(k); this.revoked.delete(k.slice(REVOKED_KEY_PREFIX.length)) }
    }
    for (const k of keys) {
      const value = data[k]
      if (this.seenRevocations.get(k) === value) continue
      this.seenRevocations.set(k, value)
      const peer = k.slice(REVOKED_KEY_PREFIX.length)
      try {
        const rev = await verifyRevocation(value, this.meshId)
        if (rev.peer !== peer) throw new InvalidTicketError('malformed', `revocation of ${rev.peer} stored under ${k}`)
        this.revoked.set(peer, rev.before)
      } catch {
        this.revoked.delete(peer)
        refused++
      }
    }
    return refused
  }

  /** The peer's valid ticket (not expired, not revoked), if any. */
  ticket (peerId: string): Ticket | undefined {
    const t = this.tickets.get(peerId)?.ticket
    if (t === undefined || t.expires <= this.now()) return undefined
    const before = this.revoked.get(peerId)
    if (before !== undefined && t.issued <= before) return undefined
    return t
  }

  admitted (peerId: string, role?: AdmissionRole): boolean {
    const t = this.ticket(peerId)
    return t !== undefined && (role === undefined || t.roles.includes(role))
  }
}
