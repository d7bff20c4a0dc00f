import fc from 'fast-check'
import { expect } from 'vitest'
import { DISTRUST_REASONS, InvalidAuditMessageError, InvalidDistrustReportError, parseAuditMessage, parseReport } from '@shardmesh/pipeline'
import { arbitraryText, expectTyped, mutatedJson, Tally } from '../harness.ts'
import type { Target } from '../harness.ts'

const encode = (v: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(v))
const tokens = (max: number): fc.Arbitrary<number[]> => fc.array(fc.nat(399), { minLength: 1, maxLength: max })

/** Every audit message type, valid (tiny-gqa2: vocabulary 400, context 256, prompts of 8). */
const validAudit = fc.oneof(
  fc.record({ type: fc.constant('prompt'), tokens: tokens(8), steps: fc.integer({ min: 1, max: 248 }), rounds: fc.integer({ min: 1, max: 256 }) }),
  fc.constantFrom({ type: 'ping' }, { type: 'pong' }, { type: 'ready' }, { type: 'go' }),
  fc.record({ type: fc.constant('tokens'), tokens: tokens(249) }),
  fc.record({ type: fc.constant('error'), code: fc.string({ maxLength: 64 }), message: fc.string({ maxLength: 200 }) })
)

const validReport = fc.record({ peer: fc.string({ minLength: 1, maxLength: 128 }), reason: fc.constantFrom(...DISTRUST_REASONS), detail: fc.string({ maxLength: 512 }) })

/** What a peer reads from the audit and distrust protocols (pipeline/src/audit.ts, distrust.ts). */
export function pipelineTargets (): Target[] {
  const t = (name: string, runs: number, property: (tally: Tally) => Target['property']): Target => {
    const tally = new Tally()
    return { name, runs, tally, property: property(tally) }
  }
  return [
    t('audit/bytes', 3000, tally => () => fc.property(arbitraryText(), bytes => {
      expectTyped(tally, [InvalidAuditMessageError], () => parseAuditMessage(bytes))
    })),
    t('audit/mutated', 3000, tally => () => fc.property(mutatedJson(validAudit, ['type', 'tokens', 'steps', 'rounds', 'code']), bytes => {
      expectTyped(tally, [InvalidAuditMessageError], () => parseAuditMessage(bytes), m => { expect(parseAuditMessage(encode(m))).toEqual(m) })
    })),
    t('audit/round-trip', 1000, tally => () => fc.property(validAudit, m => {
      expect(expectTyped(tally, [], () => parseAuditMessage(encode(m)))).toEqual(m)
    })),
    t('distrust/bytes', 3000, tally => () => fc.property(arbitraryText(), bytes => {
      expectTyped(tally, [InvalidDistrustReportError], () => parseReport(bytes))
    })),
    t('distrust/mutated', 3000, tally => () => fc.property(mutatedJson(validReport, ['peer', 'reason', 'detail']), bytes => {
      expectTyped(tally, [InvalidDistrustReportError], () => parseReport(bytes), r => { expect(DISTRUST_REASONS).toContain(r.reason) })
    })),
    t('distrust/round-trip', 1000, tally => () => fc.property(validReport, r => {
      expect(expectTyped(tally, [], () => parseReport(encode(r)))).toEqual(r)
    }))
  ]
}
