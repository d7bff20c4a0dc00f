// The summary a browser tab publishes on the mesh's `metrics` topic: its latest measured
// metrics, as one small JSON object. The sender is the gossipsub signer (StrictSign): the
// payload names no peer, so no tab can speak for another.
import { InvalidSummaryError } from '../errors.ts'
import { isTabMetric, TAB_METRICS } from './metrics.ts'
import type { TabMetrics } from './metrics.ts'

export const TAB_SUMMARY_TYPE = 'tab-summary'
/** Format version; a decoder refuses any other (reason `version`). */
export const TAB_SUMMARY_VERSION = 1
/** Largest summary accepted (bytes of its UTF-8 JSON): a full one is ~420 bytes, the largest valid one (longest strings, 23-character numbers) 834. */
export const MAX_TAB_SUMMARY_BYTES = 1024
/** Longest `browser`, `version` and `backend`; `adapter` may be longer. */
export const MAX_NAME_LENGTH = 32
export const MAX_ADAPTER_LENGTH = 128

export interface TabSummary {
  type: typeof TAB_SUMMARY_TYPE
  v: typeof TAB_SUMMARY_VERSION
  /** The record's key in the tab's IndexedDB history: grows with each record, across reloads. */
  seq: number
  /** When the tab sampled the metrics (ms since the epoch, the tab's clock). */
  at: number
  /** Browser name and version (`chrome`, `142`). */
  browser: string
  version: string
  /** The compute backend: `webgpu` or `cpu`. */
  backend: string
  /** The WebGPU adapter's description, null without one. */
  adapter: string | null
  metrics: TabMetrics
}

const FIELDS = new Set(['type', 'v', 'seq', 'at', 'browser', 'version', 'backend', 'adapter', 'metrics'])
/** No control characters and no lone surrogates (which would not survive re-encoding). */
const TEXT = /^[^\p{Cc}\p{Cs}]*$/u

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

function bad (reason: string, message: string): never {
  throw new InvalidSummaryError(reason, message)
}

function uint (obj: Record<string, unknown>, field: string): number {
  const v = obj[field]
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) bad('bad-value', `"${field}" must be a whole number >= 0`)
  return v
}

function text (obj: Record<string, unknown>, field: string, min: number, max: number): string {
  const v = obj[field]
  if (typeof v !== 'string' || v.length < min || v.length > max || !TEXT.test(v)) bad('bad-value', `"${field}" must be text of ${min} to ${max} characters`)
  return v
}

/** Check a summary's fields; returns a copy holding only them. */
function check (obj: Record<string, unknown>): TabSummary {
  if (obj.type !== TAB_SUMMARY_TYPE) bad('malformed', `"type" must be "${TAB_SUMMARY_TYPE}"`)
  if (obj.v !== TAB_SUMMARY_VERSION) bad('version', `"v" must be ${TAB_SUMMARY_VERSION}`)
  for (const k of Object.keys(obj)) if (!FIELDS.has(k)) bad('unknown-field', `unknown field "${k.slice(0, 40)}"`)
  const adapter = obj.adapter === null ? null : text(obj, 'adapter', 1, MAX_ADAPTER_LENGTH)
  const m = obj.metrics
  if (typeof m !== 'object' || m === null || Array.isArray(m)) bad('malformed', '"metrics" must be an object')
  const metrics: TabMetrics = {}
  for (const [name, value] of Object.entries(m)) {
    if (!isTabMetric(name)) bad('unknown-metric', `unknown metric "${name.slice(0, 40)}"`)
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) bad('bad-value', `metric "${name}" must be a finite number >= 0`)
    if (TAB_METRICS[name] === 'bool' && value !== 0 && value !== 1) bad('bad-value', `metric "${name}" must be 0 or 1`)
    metrics[name] = value
  }
  return {
    type: TAB_SUMMARY_TYPE,
    v: TAB_SUMMARY_VERSION,
    seq: uint(obj, 'seq'),
    at: uint(obj, 'at'),
    browser: text(obj, 'browser', 1, MAX_NAME_LENGTH),
    version: text(obj, 'version', 0, MAX_NAME_LENGTH),
    backend: text(obj, 'backend', 1, MAX_NAME_LENGTH),
    adapter,
    metrics
  }
}

/**
 * Decode a summary payload of at most MAX_TAB_SUMMARY_BYTES: one UTF-8 JSON object with
 * exactly the fields of `TabSummary` (no unknown ones), known metric names and finite,
 * non-negative values. Anything else throws `InvalidSummaryError` with its reason.
 */
export function decodeTabSummary (data: Uint8Array): TabSummary {
  if (data.byteLength > MAX_TAB_SUMMARY_BYTES) bad('oversized', `${data.byteLength} bytes, limit ${MAX_TAB_SUMMARY_BYTES}`)
  let value: unknown
  try {
    value = JSON.parse(decoder.decode(data))
  } catch {
    bad('malformed', 'not UTF-8 JSON')
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) bad('malformed', 'not a JSON object')
  return check(value as Record<string, unknown>)
}

/** Encode a summary; throws `InvalidSummaryError` for what `decodeTabSummary` would refuse. */
export function encodeTabSummary (summary: TabSummary): Uint8Array {
  const data = encoder.encode(JSON.stringify(check(summary as unknown as Record<string, unknown>)))
  if (data.byteLength > MAX_TAB_SUMMARY_BYTES) bad('oversized', `${data.byteLength} bytes, limit ${MAX_TAB_SUMMARY_BYTES}`)
  return data
}
