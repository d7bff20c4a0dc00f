import fc from 'fast-check'
import { expect } from 'vitest'
import { InvalidMessageError, parseElection, parseMembership, parseStateMessage } from '@shardmesh/mesh'
import { encodeMessage } from '../../../packages/mesh/src/codec.ts'
import { parseHints } from '../../../packages/mesh/src/pex.ts'
import { arbitraryText, expectTyped, mutatedBytes, mutatedJson, Tally } from '../harness.ts'
import type { Target } from '../harness.ts'
import { tabSummaryTargets } from './tab-summary.ts'

const BASE58 = [...'123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz']
/** Ed25519 peer ids look like this: 12D3KooW + 44 base58 characters. */
const peerId = fc.string({ unit: fc.constantFrom(...BASE58), minLength: 44, maxLength: 44 }).map(s => `12D3KooW${s}`)
const uint = fc.nat({ max: Number.MAX_SAFE_INTEGER })
const term = fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER })

/** [message, signer]: a valid election message of each type, signed by the peer it speaks for. */
const election = fc.tuple(peerId, peerId).chain(([me, other]) => fc.oneof(
  fc.record({ type: fc.constantFrom('prevote-request', 'vote-request'), term, candidate: fc.constant(me), lastVersion: uint, lastTerm: uint }),
  fc.record({ type: fc.constant('prevote'), term, candidate: fc.constant(other), voter: fc.constant(me) }),
  fc.record({ type: fc.constant('vote'), term, candidate: fc.constant(other), voter: fc.constant(me), known: uint, lastVersion: uint, lastTerm: uint }),
  fc.record({ type: fc.constant('heartbeat'), term, coordinator: fc.constant(me), stateVersion: uint, stateTerm: uint, commitVersion: uint, ready: fc.boolean() })
).map(m => [m, me] as const))

const layerRange = fc.tuple(fc.nat(1000), fc.integer({ min: 1, max: 100 })).map(([a, n]) => [a, a + n])
const capabilities = fc.record({
  runtime: fc.record({ name: fc.string({ maxLength: 16 }), version: fc.string({ maxLength: 16 }) }),
  backend: fc.record({
    kind: fc.constantFrom('cpu', 'webgpu'),
    adapter: fc.dictionary(fc.string({ maxLength: 16 }), fc.string({ maxLength: 32 }), { maxKeys: 4 }),
    limits: fc.dictionary(fc.string({ maxLength: 16 }), fc.double({ noNaN: true, noDefaultInfinity: true }), { maxKeys: 4 })
  }, { requiredKeys: ['kind'] }),
  memoryBytes: fc.double({ min: 0, noNaN: true, noDefaultInfinity: true }),
  throughput: fc.record({ model: fc.string({ maxLength: 20 }), decodeTokensPerSecond: fc.double({ min: 0, max: 1e6, noNaN: true }) })
}, { requiredKeys: ['runtime', 'backend', 'memoryBytes'] })

const announce = peerId.chain(me => fc.record({
  type: fc.constant('announce'),
  peerId: fc.constant(me),
  seq: uint,
  profile: fc.record({
    addrs: fc.array(fc.string({ minLength: 1, maxLength: 60 }).map(s => `/${s}`), { maxLength: 4 }),
    role: fc.constantFrom('peer', 'bootstrap'),
    eligible: fc.boolean(),
    capabilities,
    layers: fc.array(layerRange, { maxLength: 4 })
  }),
  load: fc.double({ min: 0, max: 1e6, noNaN: true }),
  term: uint,
  coordinator: fc.option(peerId, { nil: null }),
  stateVersion: uint,
  stateTerm: uint
}, { requiredKeys: ['type', 'peerId', 'seq', 'load', 'term', 'coordinator', 'stateVersion', 'stateTerm'] }).map(m => [m, me] as const))

const transaction = fc.oneof(
  fc.record({ op: fc.constant('init'), members: fc.uniqueArray(peerId, { maxLength: 5 }) }),
  fc.record({ op: fc.constant('term'), coordinator: peerId }),
  fc.record({ op: fc.constant('add'), peerId }),
  fc.record({ op: fc.constant('remove'), peerId, reason: fc.string({ maxLength: 30 }) }),
  fc.record({ op: fc.constant('delete'), key: fc.string({ minLength: 1, maxLength: 30 }) }),
  fc.record({ op: fc.constant('set'), key: fc.string({ minLength: 1, maxLength: 30 }), value: fc.jsonValue({ maxDepth: 4 }).filter(v => v !== null) })
)
const state = fc.record({
  version: uint,
  term: uint,
  config: fc.uniqueArray(peerId, { maxLength: 5 }),
  coordinator: fc.option(fc.record({ term: uint, peerId }), { nil: null }),
  data: fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 4 })
})
const stateMessage = fc.tuple(peerId, peerId).chain(([me, other]) => fc.oneof(
  fc.tuple(fc.integer({ min: 1, max: 1e9 }), fc.array(fc.record({ term: fc.integer({ min: 1, max: 1e9 }), tx: transaction }), { maxLength: 5 })).chain(([first, es]) => fc.record({
    type: fc.constant('append'), term: uint, coordinator: fc.constant(me), commitVersion: uint,
    entries: fc.constant(es.map((e, i) => ({ version: first + i, ...e })))
  })),
  fc.record({ type: fc.constant('snapshot'), term: uint, sender: fc.constant(me), target: fc.option(fc.constant(other), { nil: null }), state }),
  fc.record({ type: fc.constant('sync'), term: uint, peerId: fc.constant(me), target: fc.constant(other), version: uint, stateTerm: uint })
).map(m => [m, me] as const))

const hints = fc.record({ peers: fc.array(fc.record({ peerId, addrs: fc.array(fc.string({ maxLength: 40 }).map(s => `/${s}`), { maxLength: 3 }) }), { maxLength: 5 }) })

/** A message as its JSON reads back (-0 is 0, undefined fields are gone). */
const json = (m: unknown): unknown => JSON.parse(JSON.stringify(m))

type Parse = (data: Uint8Array, from: string) => unknown

/** Gossip messages of the three planes, tab metric summaries and peer-exchange answers: what any peer can publish. */
export function gossipTargets (): Target[] {
  const planes: Array<[string, Parse, fc.Arbitrary<readonly [object, string]>, string[], number]> = [
    ['election', parseElection, election, ['type', 'term', 'candidate', 'voter', 'coordinator'], 2000],
    ['membership', parseMembership, announce, ['profile', 'capabilities', 'backend', 'layers', 'addrs', 'coordinator'], 2000],
    ['state', parseStateMessage, stateMessage, ['entries', 'tx', 'op', 'value', 'members', 'state', 'config', 'data', 'version'], 2000]
  ]
  const targets: Target[] = []
  for (const [plane, parse, valid, keys, runs] of planes) {
    const bytes = new Tally()
    targets.push({
      name: `${plane}/bytes`, runs, tally: bytes,
      property: () => fc.property(arbitraryText(), peerId, (data, from) => { expectTyped(bytes, [InvalidMessageError], () => parse(data, from)) })
    })
    const mutated = new Tally()
    targets.push({
      name: `${plane}/mutated`, runs, tally: mutated,
      property: () => fc.property(
        valid.chain(([m, from]) => fc.tuple(fc.oneof({ weight: 4, arbitrary: mutatedJson(m, keys) }, { weight: 1, arbitrary: mutatedBytes(encodeMessage(m)) }), fc.constant(from))),
        ([data, from]) => {
          // whatever passes validation re-encodes and validates again to the same value
          expectTyped(mutated, [InvalidMessageError], () => parse(data, from), m => { expect(json(parse(encodeMessage(m as object), from))).toEqual(json(m)) })
        })
    })
    const roundTrip = new Tally()
    targets.push({
      name: `${plane}/round-trip`, runs: runs / 4, tally: roundTrip,
      property: () => fc.property(valid, ([m, from]) => {
        expect(json(expectTyped(roundTrip, [], () => parse(encodeMessage(m), from)))).toEqual(json(m))
      })
    })
  }
  // peer exchange drops what it cannot use instead of throwing: never an exception, only valid hints
  const pex = new Tally()
  targets.push({
    name: 'pex/mutated', runs: 2000, tally: pex,
    property: () => fc.property(fc.oneof(arbitraryText(), mutatedJson(hints, ['peers', 'peerId', 'addrs'])), data => {
      expectTyped(pex, [], () => parseHints(data), hs => {
        expect(hs.length).toBeLessThanOrEqual(32)
        for (const h of hs) expect(h.addrs.every(a => typeof a === 'string' && a.startsWith('/'))).toBe(true)
      })
    })
  })
  targets.push(...tabSummaryTargets())
  return targets
}
