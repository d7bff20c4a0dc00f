import { describe, expect, it } from 'vitest'
import { encodeMessage, InvalidMessageError, parseElection, parseMembership, parseStateMessage, parseTransaction } from '../src/index.ts'

const A = '12D3KooWD8FnYAacpJbGbPo4DnrYKfZYg2XGbwwE5vDY7xt12Au3'
const B = '12D3KooWQPP8s9qybRpQmvBWAV6nH1T1dBHZwgw6pBrEh9456SDY'

function reason (fn: () => unknown): string {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidMessageError)
    expect((err as Error).name).toBe('InvalidMessageError')
    return (err as InvalidMessageError).reason
  }
  throw new Error('did not throw')
}

const announce = {
  type: 'announce',
  peerId: A,
  seq: 3,
  load: 0.5,
  term: 2,
  coordinator: B,
  stateVersion: 10,
  stateTerm: 2,
  profile: {
    addrs: ['/ip4/127.0.0.1/tcp/4001/p2p/' + A],
    role: 'peer',
    eligible: true,
    capabilities: { runtime: { name: 'node', version: '22' }, backend: { kind: 'webgpu', adapter: { vendor: 'x' }, limits: { maxBufferSize: 1 } }, memoryBytes: 1 },
    layers: [[0, 3]]
  }
}

describe('message validation', () => {
  it('accepts well-formed messages of every plane and keeps only known fields', () => {
    const a = parseMembership(encodeMessage({ ...announce, extra: 'ignored' }), A)
    expect(a.profile?.capabilities.backend.limits).toEqual({ maxBufferSize: 1 })
    expect(a).not.toHaveProperty('extra')
    expect(parseMembership(encodeMessage({ ...announce, profile: undefined }), A).profile).toBeUndefined()
    expect(parseElection(encodeMessage({ type: 'vote', term: 3, candidate: B, voter: A, known: 5, lastVersion: 1, lastTerm: 1 }), A).type).toBe('vote')
    expect(parseElection(encodeMessage({ type: 'heartbeat', term: 3, coordinator: A, stateVersion: 0, stateTerm: 0, commitVersion: 0, ready: false }), A).type).toBe('heartbeat')
    const append = parseStateMessage(encodeMessage({ type: 'append', term: 2, coordinator: A, entries: [{ version: 4, term: 2, tx: { op: 'set', key: 'k', value: [1] } }, { version: 5, term: 2, tx: { op: 'remove', peerId: B, reason: 'dead' } }], commitVersion: 3 }), A)
    expect(append.type === 'append' && append.entries).toHaveLength(2)
    const snap = parseStateMessage(encodeMessage({ type: 'snapshot', term: 2, sender: A, target: null, state: { version: 5, term: 2, config: [A, B], coordinator: { term: 2, peerId: A }, data: {} } }), A)
    expect(snap.type === 'snapshot' && snap.state.config).toEqual([A, B])
  })

  it('names the reason for each kind of bad message', () => {
    expect(reason(() => parseElection(new Uint8Array([0xc3, 0x28]), A))).toBe('malformed') // not UTF-8
    expect(reason(() => parseElection(encodeMessage([1, 2]), A))).toBe('malformed')
    expect(reason(() => parseElection(new Uint8Array(4096).fill(32), A))).toBe('oversized')
    expect(reason(() => parseElection(encodeMessage({ type: 'coup', term: 1 }), A))).toBe('unknown-type')
    expect(reason(() => parseElection(encodeMessage({ type: 'vote', term: 0, candidate: B, voter: A, known: 1, lastVersion: 0, lastTerm: 0 }), A))).toBe('malformed')
    expect(reason(() => parseElection(encodeMessage({ type: 'vote', term: 1.5, candidate: B, voter: A, known: 1, lastVersion: 0, lastTerm: 0 }), A))).toBe('malformed')
    expect(reason(() => parseElection(encodeMessage({ type: 'vote', term: 2, candidate: 'not-a-peer', voter: A, known: 1, lastVersion: 0, lastTerm: 0 }), A))).toBe('malformed')
    // the peer a message speaks for must be its signer
    expect(reason(() => parseElection(encodeMessage({ type: 'vote', term: 2, candidate: A, voter: B, known: 1, lastVersion: 0, lastTerm: 0 }), A))).toBe('sender-mismatch')
    expect(reason(() => parseElection(encodeMessage({ type: 'heartbeat', term: 2, coordinator: B, stateVersion: 0, stateTerm: 0, commitVersion: 0, ready: true }), A))).toBe('sender-mismatch')
    expect(reason(() => parseMembership(encodeMessage(announce), B))).toBe('sender-mismatch')
    expect(reason(() => parseStateMessage(encodeMessage({ type: 'sync', term: 1, peerId: B, target: A, version: 0, stateTerm: 0 }), A))).toBe('sender-mismatch')
    // profile fields
    expect(reason(() => parseMembership(encodeMessage({ ...announce, profile: { ...announce.profile, layers: [[3, 1]] } }), A))).toBe('malformed')
    expect(reason(() => parseMembership(encodeMessage({ ...announce, profile: { ...announce.profile, addrs: ['not a multiaddr'] } }), A))).toBe('malformed')
    expect(parseMembership(encodeMessage({ ...announce, profile: { ...announce.profile, anchors: [A, B] } }), A).profile?.anchors).toEqual([A, B])
    expect(reason(() => parseMembership(encodeMessage({ ...announce, profile: { ...announce.profile, anchors: [] } }), A))).toBe('malformed')
    expect(reason(() => parseMembership(encodeMessage({ ...announce, profile: { ...announce.profile, anchors: ['not a peer id'] } }), A))).toBe('malformed')
    expect(reason(() => parseMembership(encodeMessage({ ...announce, profile: { ...announce.profile, anchors: A } }), A))).toBe('malformed')
    expect(reason(() => parseMembership(encodeMessage({ ...announce, profile: { ...announce.profile, capabilities: { ...announce.profile.capabilities, backend: { kind: 'tpu' } } } }), A))).toBe('malformed')
    expect(reason(() => parseMembership(encodeMessage({ ...announce, load: Number.NaN }), A))).toBe('malformed')
    // log entries
    expect(reason(() => parseStateMessage(encodeMessage({ type: 'append', term: 2, coordinator: A, entries: [{ version: 4, term: 2, tx: { op: 'set', key: 'k', value: 1 } }, { version: 6, term: 2, tx: { op: 'delete', key: 'k' } }], commitVersion: 0 }), A))).toBe('malformed')
    expect(reason(() => parseStateMessage(encodeMessage({ type: 'snapshot', term: 2, sender: A, target: null, state: { version: 1, term: 1, config: [A, A], coordinator: null, data: {} } }), A))).toBe('malformed')
  })

  it('checks transactions', () => {
    expect(parseTransaction({ op: 'set', key: 'plan', value: { a: 1 } })).toEqual({ op: 'set', key: 'plan', value: { a: 1 } })
    expect(reason(() => parseTransaction({ op: 'set', key: 'plan' }))).toBe('malformed')
    expect(reason(() => parseTransaction({ op: 'set', key: 'k'.repeat(300), value: 1 }))).toBe('malformed')
    expect(reason(() => parseTransaction({ op: 'set', key: 'k', value: 'v'.repeat(70_000) }))).toBe('oversized')
    expect(reason(() => parseTransaction({ op: 'drop-table' }))).toBe('malformed')
    expect(reason(() => parseTransaction(null))).toBe('malformed')
  })
})
