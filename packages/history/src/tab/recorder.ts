// The tab side of the history: sample the tab's metrics every TAB_SAMPLE_MS, store a record
// in its IndexedDB history when something changed (or TAB_KEEPALIVE_MS passed), and publish
// that record as a summary on the mesh's `metrics` topic, for the nodes that record history.
import { TAB_METRICS } from './metrics.ts'
import type { TabMetric, TabMetrics } from './metrics.ts'
import { encodeTabSummary, MAX_ADAPTER_LENGTH, MAX_NAME_LENGTH, TAB_SUMMARY_TYPE, TAB_SUMMARY_VERSION } from './summary.ts'
import type { TabSummary } from './summary.ts'
import type { TabHistory, TabRecord } from './store.ts'

/** The tab samples its metrics this often. */
export const TAB_SAMPLE_MS = 10_000
/** A record (and its summary) is written at least this often, changed or not. */
export const TAB_KEEPALIVE_MS = 60_000
/** A summary that reached no peer is sent again after this long, doubled each time up to the sample period. */
export const TAB_RETRY_MS = 1000
/** Metrics that move between samples with nothing happening: alone they make no new record. */
export const DRIFTING_METRICS: readonly TabMetric[] = ['js_heap_bytes', 'hidden_ms']

/** What the tab measures now (the recorder adds the time and the peer id). */
export type TabSample = Omit<TabRecord, 'id' | 'at' | 'peer'>

export interface TabRecorderInit {
  store: Pick<TabHistory, 'add'>
  /** The tab's peer id (the records' `peer`). */
  peer: string
  sample: () => TabSample
  /**
   * Publish a summary (`pubsub.publish(topicName(meshId, 'metrics'), data)`); resolves with
   * the number of peers it went to. A summary that reached nobody (just after joining, before
   * the recording nodes' subscriptions arrived) is sent again after TAB_RETRY_MS, doubling up
   * to `sampleMs`.
   * @default none: records only
   */
  publish?: (data: Uint8Array) => Promise<number>
  /** @default TAB_SAMPLE_MS */
  sampleMs?: number
  /** @default TAB_KEEPALIVE_MS */
  keepaliveMs?: number
  onError?: (err: Error) => void
}

export interface TabRecorderStats {
  /** Records this recorder stored. */
  records: number
  /** Summaries published to at least one peer, and attempts that reached none. */
  published: number
  unsent: number
  /** The newest record's id (its summary's `seq`) and the size of its summary. */
  lastSeq: number | null
  lastBytes: number | null
  /** Peers the last published summary went to. */
  lastRecipients: number
}

/** Printable text of at most `max` characters (control characters and lone surrogates become '?'). */
function clean (s: string, max: number): string {
  return s.replace(/[\p{Cc}\p{Cs}]/gu, '?').slice(0, max)
}

/** The summary of a stored record: strings cut to their limits, only finite values >= 0. */
export function summaryOf (record: TabRecord & { id: number }): TabSummary {
  const metrics: TabMetrics = {}
  for (const [name, value] of Object.entries(record.metrics) as Array<[TabMetric, number | undefined]>) {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) continue
    if (TAB_METRICS[name] === 'bool' && value !== 0 && value !== 1) continue
    metrics[name] = value
  }
  const adapter = record.adapter === null ? null : clean(record.adapter, MAX_ADAPTER_LENGTH)
  return {
    type: TAB_SUMMARY_TYPE,
    v: TAB_SUMMARY_VERSION,
    seq: record.id,
    at: Math.max(0, Math.round(record.at)),
    browser: clean(record.browser, MAX_NAME_LENGTH) || 'browser',
    version: clean(record.version, MAX_NAME_LENGTH),
    backend: clean(record.backend, MAX_NAME_LENGTH) || 'unknown',
    adapter: adapter === '' ? null : adapter,
    metrics
  }
}

function differs (a: TabSample, b: TabSample): boolean {
  if (a.browser !== b.browser || a.version !== b.version || a.backend !== b.backend || a.adapter !== b.adapter) return true
  const names = new Set([...Object.keys(a.metrics), ...Object.keys(b.metrics)] as TabMetric[])
  for (const n of names) if (!DRIFTING_METRICS.includes(n) && a.metrics[n] !== b.metrics[n]) return true
  return false
}

export class TabRecorder {
  private readonly init: TabRecorderInit
  private timer: ReturnType<typeof setInterval> | undefined
  private retry: ReturnType<typeof setTimeout> | undefined
  private retryMs = TAB_RETRY_MS
  private last: { sample: TabSample, at: number } | undefined
  private latest: (TabRecord & { id: number }) | undefined
  private unpublished = false
  private running: Promise<void> | undefined
  private readonly counts: TabRecorderStats = { records: 0, published: 0, unsent: 0, lastSeq: null, lastBytes: null, lastRecipients: 0 }

  constructor (init: TabRecorderInit) {
    this.init = init
  }

  /** Sample now, then every `sampleMs`. */
  start (): void {
    if (this.timer !== undefined) return
    this.timer = setInterval(() => { void this.tick() }, this.init.sampleMs ?? TAB_SAMPLE_MS)
    void this.tick()
  }

  stop (): void {
    clearInterval(this.timer)
    clearTimeout(this.retry)
    this.timer = undefined
    this.retry = undefined
  }

  stats (): TabRecorderStats { return { ...this.counts } }

  /** Sample, store when changed, publish what is not published yet (one tick at a time; a tick during one waits for it). */
  async tick (): Promise<void> {
    while (this.running !== undefined) await this.running
    this.running = this.once().finally(() => { this.running = undefined })
    await this.running
  }

  private retryLater (): void {
    if (this.timer === undefined || this.retry !== undefined) return
    const sampleMs = this.init.sampleMs ?? TAB_SAMPLE_MS
    if (this.retryMs >= sampleMs) return // the next sample sends it
    this.retry = setTimeout(() => { this.retry = undefined; void this.tick() }, this.retryMs)
    this.retryMs *= 2
  }

  private async once (): Promise<void> {
    try {
      const sample = this.init.sample()
      const now = Date.now()
      if (this.last === undefined || differs(sample, this.last.sample) || now - this.last.at >= (this.init.keepaliveMs ?? TAB_KEEPALIVE_MS)) {
        const record: TabRecord = { ...sample, metrics: { ...sample.metrics }, at: now, peer: this.init.peer }
        const id = await this.init.store.add(record)
        this.last = { sample, at: now }
        this.latest = { ...record, id }
        this.unpublished = true
        this.counts.records++
        this.counts.lastSeq = id
      }
      if (this.unpublished && this.latest !== undefined && this.init.publish !== undefined) {
        const data = encodeTabSummary(summaryOf(this.latest))
        this.counts.lastBytes = data.byteLength
        const recipients = await this.init.publish(data)
        if (recipients > 0) {
          this.unpublished = false
          this.counts.published++
          this.counts.lastRecipients = recipients
          this.retryMs = TAB_RETRY_MS
        } else {
          this.counts.unsent++
          this.retryLater()
        }
      }
    } catch (err) {
      this.init.onError?.(err instanceof Error ? err : new Error(String(err)))
    }
  }
}

/** Start sampling a tab's metrics into its history and publishing them (see `TabRecorder`). */
export function tabRecorder (init: TabRecorderInit): TabRecorder {
  const r = new TabRecorder(init)
  r.start()
  return r
}
