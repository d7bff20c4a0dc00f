import fc from 'fast-check'
import { expect } from 'vitest'
import { decodeTabSummary, encodeTabSummary, InvalidSummaryError, MAX_ADAPTER_LENGTH, MAX_NAME_LENGTH, TAB_METRIC_NAMES, TAB_METRICS } from '@shardmesh/history/tab'
import type { TabMetric, TabSummary } from '@shardmesh/history/tab'
import { arbitraryText, expectTyped, mutatedBytes, mutatedJson, Tally } from '../harness.ts'
import type { Target } from '../harness.ts'

const uint = fc.nat({ max: Number.MAX_SAFE_INTEGER })
const metricValue = (name: TabMetric): fc.Arbitrary<number> => TAB_METRICS[name] === 'bool'
  ? fc.constantFrom(0, 1)
  : fc.oneof(fc.nat({ max: 2 ** 40 }), fc.double({ min: 0, max: 1e12, noNaN: true }))

/** A valid summary, as any tab could publish it. */
const summary: fc.Arbitrary<TabSummary> = fc.record({
  type: fc.constant('tab-summary' as const),
  v: fc.constant(1 as const),
  seq: uint,
  at: uint,
  browser: fc.string({ minLength: 1, maxLength: MAX_NAME_LENGTH }),
  version: fc.string({ maxLength: MAX_NAME_LENGTH }),
  backend: fc.constantFrom('webgpu', 'cpu'),
  adapter: fc.option(fc.string({ minLength: 1, maxLength: MAX_ADAPTER_LENGTH }), { nil: null }),
  metrics: fc.record(Object.fromEntries(TAB_METRIC_NAMES.map(n => [n, metricValue(n)])) as Record<TabMetric, fc.Arbitrary<number>>, { requiredKeys: [] })
})

/** A summary as its JSON reads back (-0 is 0). */
const json = (m: unknown): unknown => JSON.parse(JSON.stringify(m))

/** Tab metric summaries (the mesh's `metrics` topic): what any peer can publish to a recording node. */
export function tabSummaryTargets (): Target[] {
  const bytes = new Tally()
  const mutated = new Tally()
  const roundTrip = new Tally()
  return [
    {
      name: 'tab-summary/bytes', runs: 2000, tally: bytes,
      property: () => fc.property(arbitraryText(), data => { expectTyped(bytes, [InvalidSummaryError], () => decodeTabSummary(data)) })
    },
    {
      name: 'tab-summary/mutated', runs: 2000, tally: mutated,
      property: () => fc.property(
        summary.chain(s => fc.oneof({ weight: 4, arbitrary: mutatedJson(s, ['type', 'v', 'seq', 'at', 'browser', 'adapter', 'metrics', ...TAB_METRIC_NAMES]) }, { weight: 1, arbitrary: mutatedBytes(encodeTabSummary(s)) })),
        data => {
          // whatever passes re-encodes within the limit and decodes again to the same value
          expectTyped(mutated, [InvalidSummaryError], () => decodeTabSummary(data), s => { expect(json(decodeTabSummary(encodeTabSummary(s)))).toEqual(json(s)) })
        })
    },
    {
      name: 'tab-summary/round-trip', runs: 500, tally: roundTrip,
      property: () => fc.property(summary, s => {
        expect(json(expectTyped(roundTrip, [], () => decodeTabSummary(encodeTabSummary(s))))).toEqual(json(s))
      })
    }
  ]
}
