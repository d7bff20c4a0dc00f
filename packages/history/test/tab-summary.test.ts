import { describe, expect, it } from 'vitest'
import { decodeTabSummary, encodeTabSummary, InvalidSummaryError, MAX_TAB_SUMMARY_BYTES, summaryOf, TAB_METRIC_NAMES, TAB_METRICS } from '../src/tab/index.ts'
import type { TabSummary } from '../src/tab/index.ts'

/** A summary with every metric, as a tab on SwiftShader WebGPU sends it. */
const full: TabSummary = {
  type: 'tab-summary',
  v: 1,
  seq: 1234,
  at: 1_765_000_000_000,
  browser: 'chrome',
  version: '142',
  backend: 'webgpu',
  adapter: 'SwiftShader Device (Subzero)',
  metrics: {
    bench_decode_tps: 118.9,
    tokens: 1536,
    passes: 96,
    busy_ms: 2046.3,
    serving_tps: 750.6,
    pass_ms_p50: 17.25,
    pass_ms_p90: 41.5,
    stage_layers: 2,
    hidden: 0,
    hidden_ms: 100_512,
    js_heap_bytes: 48_121_337,
    device_memory_gib: 8,
    memory_budget_bytes: 2_147_483_648
  }
}

const text = (s: string): Uint8Array => new TextEncoder().encode(s)
const json = (o: unknown): Uint8Array => text(JSON.stringify(o))

/** The reason `decodeTabSummary(data)` refuses it with (fails when it decodes or throws anything else). */
function reason (data: Uint8Array): string {
  try {
    decodeTabSummary(data)
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidSummaryError)
    expect((err as Error).name).toBe('InvalidSummaryError')
    return (err as InvalidSummaryError).reason
  }
  throw new Error('decoded')
}

describe('tab summary codec', () => {
  it('round-trips a summary with every metric, well under the size limit', () => {
    expect(Object.keys(full.metrics).sort()).toEqual([...TAB_METRIC_NAMES].sort())
    const data = encodeTabSummary(full)
    expect(decodeTabSummary(data)).toEqual(full)
    console.log(`a summary with all ${TAB_METRIC_NAMES.length} metrics: ${data.byteLength} bytes (limit ${MAX_TAB_SUMMARY_BYTES})`)
    expect(data.byteLength).toBeLessThan(MAX_TAB_SUMMARY_BYTES / 2)
  })

  it('the largest valid summary (longest strings, every metric with a 23-character number) fits the limit', () => {
    const metrics = Object.fromEntries(TAB_METRIC_NAMES.map(n => [n, TAB_METRICS[n] === 'bool' ? 1 : 1.2345678901234567e+300]))
    const largest: TabSummary = { ...full, seq: Number.MAX_SAFE_INTEGER, at: Number.MAX_SAFE_INTEGER, browser: 'b'.repeat(32), version: 'v'.repeat(32), backend: 'k'.repeat(32), adapter: 'a'.repeat(128), metrics }
    const data = encodeTabSummary(largest)
    console.log(`the largest valid summary: ${data.byteLength} bytes (limit ${MAX_TAB_SUMMARY_BYTES})`)
    expect(decodeTabSummary(data)).toEqual(largest)
  })

  it('round-trips the smallest summary: no adapter, no metrics', () => {
    const small: TabSummary = { ...full, adapter: null, version: '', metrics: {} }
    expect(decodeTabSummary(encodeTabSummary(small))).toEqual(small)
  })

  it('refuses bad input with InvalidSummaryError and a reason', () => {
    const big = { ...full, adapter: 'x'.repeat(100) }
    const oversized = new Uint8Array(MAX_TAB_SUMMARY_BYTES + 1).fill(0x20)
    expect(reason(oversized)).toBe('oversized')
    expect(reason(new Uint8Array([0xff, 0xfe, 0x7b]))).toBe('malformed')
    expect(reason(text('{"type":'))).toBe('malformed')
    expect(reason(text('[1,2]'))).toBe('malformed')
    expect(reason(text('null'))).toBe('malformed')
    expect(reason(json({ ...full, type: 'announce' }))).toBe('malformed')
    expect(reason(json({ ...full, v: 2 }))).toBe('version')
    expect(reason(json({ ...full, v: '1' }))).toBe('version')
    expect(reason(json({ ...full, peer: '12D3KooWxyz' }))).toBe('unknown-field') // the sender is gossipsub's signer, never a field
    expect(reason(text(JSON.stringify(full).replace('{', '{"__proto__":{"x":1},')))).toBe('unknown-field')
    expect(reason(json({ ...full, metrics: { ...full.metrics, gpu_temp: 70 } }))).toBe('unknown-metric')
    expect(reason(text(JSON.stringify(full).replace('"metrics":{', '"metrics":{"__proto__":1,')))).toBe('unknown-metric')
    expect(reason(json({ ...full, metrics: [] }))).toBe('malformed')
    expect(reason(json({ ...full, metrics: { tokens: -1 } }))).toBe('bad-value')
    expect(reason(json({ ...full, metrics: { tokens: '5' } }))).toBe('bad-value')
    expect(reason(text(JSON.stringify(full).replace('"tokens":1536', '"tokens":1e999')))).toBe('bad-value') // JSON's Infinity
    expect(reason(json({ ...full, metrics: { hidden: 2 } }))).toBe('bad-value')
    expect(reason(json({ ...full, seq: 1.5 }))).toBe('bad-value')
    expect(reason(json({ ...full, at: 2 ** 53 }))).toBe('bad-value')
    expect(reason(json({ ...full, browser: '' }))).toBe('bad-value')
    expect(reason(json({ ...full, browser: 'chrome\n' }))).toBe('bad-value')
    expect(reason(text(JSON.stringify(full).replace('"chrome"', '"\\ud800"')))).toBe('bad-value') // a lone surrogate
    expect(reason(json({ ...big, adapter: 'x'.repeat(129) }))).toBe('bad-value')
    expect(reason(json({ ...full, adapter: 5 }))).toBe('bad-value')
    const { seq: _, ...noSeq } = full
    expect(reason(json(noSeq))).toBe('bad-value')
  })

  it('encodes only what decodes: a bad summary is refused before it is sent', () => {
    expect(() => encodeTabSummary({ ...full, metrics: { tokens: Number.NaN } })).toThrow(InvalidSummaryError)
    expect(() => encodeTabSummary({ ...full, browser: 'x'.repeat(33) })).toThrow(InvalidSummaryError)
  })

  it('summaryOf cuts a record to the limits and drops values a decoder would refuse', () => {
    const s = summaryOf({ id: 7, at: 1000.4, peer: 'p', browser: 'chrome\u0000beta', version: '1'.repeat(40), backend: '', adapter: '', metrics: { tokens: 3, busy_ms: Number.NaN, hidden: 1, passes: -1 } })
    expect(s).toEqual({ type: 'tab-summary', v: 1, seq: 7, at: 1000, browser: 'chrome?beta', version: '1'.repeat(32), backend: 'unknown', adapter: null, metrics: { tokens: 3, hidden: 1 } })
    expect(decodeTabSummary(encodeTabSummary(s))).toEqual(s)
    expect(Object.values(TAB_METRICS)).toContain('tokens/s')
  })
})
