import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { describe, expect, it } from 'vitest'
import { Admission, InvalidTicketError, decodeTicket, issueTicket, privateMeshId, REVOKED_KEY_PREFIX, signRevocation, TICKET_KEY_PREFIX, verifyRevocation, verifyTicket } from '../src/admission.ts'
import type { AdmissionRole } from '../src/admission.ts'

const HOUR = 3_600_000
const NOW = 1_800_000_000_000

async function operator (): Promise<{ key: Awaited<ReturnType<typeof generateKeyPair>>, meshId: string }> {
  const key = await generateKeyPair('Ed25519')
  return { key, meshId: privateMeshId(peerIdFromPrivateKey(key).toString()) }
}

async function peerId (): Promise<string> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
}

async function fault (p: Promise<unknown>): Promise<string> {
  const err = await p.then(() => undefined, (e: unknown) => e)
  expect(err).toBeInstanceOf(InvalidTicketError)
  return (err as InvalidTicketError).reason
}

describe('admission tickets', () => {
  it('a ticket signed by the mesh operator verifies, with its peer, roles and times', async () => {
    const op = await operator()
    const peer = await peerId()
    const token = await issueTicket(op.key, { mesh: op.meshId, peer, roles: ['compute'], issued: NOW, expires: NOW + HOUR })
    expect(token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/) // fits a URL fragment as is
    const t = await verifyTicket(token, { meshId: op.meshId, peerId: peer, now: NOW + 1 })
    expect(t).toEqual({ mesh: op.meshId, peer, roles: ['compute'], issued: NOW, expires: NOW + HOUR })
    expect(decodeTicket(token).mesh).toBe(op.meshId)
  })

  it('refuses expired tickets, other meshes, other peers, bad signatures and malformed ones', async () => {
    const op = await operator()
    const other = await operator()
    const peer = await peerId()
    const ticket = { mesh: op.meshId, peer, roles: ['compute', 'head'] as AdmissionRole[], issued: NOW, expires: NOW + HOUR }
    const token = await issueTicket(op.key, ticket)
    expect(await fault(verifyTicket(token, { meshId: op.meshId, now: NOW + HOUR }))).toBe('expired')
    expect(await fault(verifyTicket(token, { meshId: op.meshId, peerId: await peerId(), now: NOW }))).toBe('wrong-peer')
    // checked against another operator's key: the signature does not hold
    expect(await fault(verifyTicket(token, { meshId: other.meshId, now: NOW }))).toBe('bad-signature')
    // signed by another operator for this mesh id
    expect(await fault(verifyTicket(await issueTicket(other.key, ticket), { meshId: op.meshId, now: NOW }))).toBe('bad-signature')
    // a payload edited after signing (roles widened, expiry moved)
    const [, sig] = token.split('.')
    const forged = `${Buffer.from(JSON.stringify({ ...ticket, expires: NOW + 1000 * HOUR })).toString('base64url')}.${sig}`
    expect(await fault(verifyTicket(forged, { meshId: op.meshId, now: NOW }))).toBe('bad-signature')
    // a mesh that is not private has no operator
    expect(await fault(verifyTicket(token, { meshId: 'default', now: NOW }))).toBe('not-private')
    for (const bad of ['', 'x', 'a.b.c', '!!.??', `${Buffer.from('[1]').toString('base64url')}.AA`, 'x'.repeat(5000),
      `${Buffer.from(JSON.stringify({ ...ticket, roles: ['root'] })).toString('base64url')}.${sig}`,
      `${Buffer.from(JSON.stringify({ ...ticket, roles: [] })).toString('base64url')}.${sig}`,
      `${Buffer.from(JSON.stringify({ ...ticket, issued: -1 })).toString('base64url')}.${sig}`]) {
      expect(await fault(verifyTicket(bad, { meshId: op.meshId, now: NOW }))).toBe('malformed')
    }
  })

  it('roles: a compute-only ticket does not admit as head', async () => {
    const op = await operator()
    const peer = await peerId()
    const a = new Admission(op.meshId, () => NOW)
    await a.present(peer, await issueTicket(op.key, { mesh: op.meshId, peer, roles: ['compute'], issued: NOW, expires: NOW + HOUR }))
    expect(a.admitted(peer)).toBe(true)
    expect(a.admitted(peer, 'compute')).toBe(true)
    expect(a.admitted(peer, 'head')).toBe(false)
    expect(a.admitted(await peerId())).toBe(false)
  })

  it('a signed revocation in the state revokes tickets issued before it; a newer ticket admits again; forged revocations are refused', async () => {
    const op = await operator()
    const other = await operator()
    const peer = await peerId()
    let now = NOW
    const a = new Admission(op.meshId, () => now)
    await a.present(peer, await issueTicket(op.key, { mesh: op.meshId, peer, roles: ['compute'], issued: NOW, expires: NOW + HOUR }))
    const forged = await signRevocation(other.key, { mesh: op.meshId, peer, before: NOW + 10 })
    expect(await fault(verifyRevocation(forged, op.meshId))).toBe('bad-signature')
    expect(await a.syncState({ [`${REVOKED_KEY_PREFIX}${peer}`]: forged })).toBe(1)
    expect(a.admitted(peer)).toBe(true)
    const revocation = await signRevocation(op.key, { mesh: op.meshId, peer, before: NOW + 10 })
    expect(await a.syncState({ [`${REVOKED_KEY_PREFIX}${peer}`]: revocation })).toBe(0)
    expect(a.admitted(peer)).toBe(false)
    // re-admitted: a ticket issued after the revocation, published in the state
    now = NOW + 20
    const fresh = await issueTicket(op.key, { mesh: op.meshId, peer, roles: ['compute'], issued: now, expires: now + HOUR })
    expect(await a.syncState({ [`${REVOKED_KEY_PREFIX}${peer}`]: revocation, [`${TICKET_KEY_PREFIX}${peer}`]: fresh })).toBe(0)
    expect(a.admitted(peer)).toBe(true)
    expect(a.token(peer)).toBe(fresh)
    // the older ticket presented again (an old announcement) does not replace the newer one
    await a.present(peer, await issueTicket(op.key, { mesh: op.meshId, peer, roles: ['compute'], issued: NOW, expires: NOW + HOUR }))
    expect(a.token(peer)).toBe(fresh)
    // the revocation removed from the state: nothing revoked any more
    expect(await a.syncState({})).toBe(0)
    now = NOW + 2 * HOUR
    expect(a.admitted(peer)).toBe(false) // expired
  })
})
