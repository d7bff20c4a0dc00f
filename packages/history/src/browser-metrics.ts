// The node side of tab summaries: subscribe to the mesh's `metrics` topic and persist each
// summary a tab publishes into `browser_metrics`, one row per metric. Bad summaries are
// refused before gossipsub forwards them and counted by reason; none reaches the store.
import { subscribeTopic } from '@shardmesh/mesh'
import type { TopicPubsub } from '@shardmesh/mesh'
import { InvalidSummaryError } from './errors.ts'
import { TAB_METRICS } from './tab/metrics.ts'
import type { TabMetric } from './tab/metrics.ts'
import { decodeTabSummary } from './tab/summary.ts'
import type { TabSummary } from './tab/summary.ts'
import type { HistoryStore } from './store.ts'

/** A tab's summaries closer together than this are dropped (`rate-limited`): at most one per second per tab reaches the store. */
export const TAB_SUMMARY_MIN_GAP_MS = 1000
/** Tabs whose last summary is remembered (for repeats and the rate limit); the oldest is forgotten first. */
export const TAB_SUMMARY_PEERS = 4096

export interface TabSummariesInit {
  pubsub: TopicPubsub
  /** `topicName(meshId, 'metrics')` of @shardmesh/mesh. */
  topic: string
  /** Private meshes: summaries of peers without a valid ticket are dropped (`unadmitted`). @default everyone */
  admitted?: (peerId: string) => boolean
  /** A tab's summaries closer together than this are dropped (`rateLimited`). @default TAB_SUMMARY_MIN_GAP_MS */
  minGapMs?: number
}

export interface TabSummaryStats {
  /** Summaries that passed the decoder. */
  received: number
  /** Summaries written to `browser_metrics` (one row per metric). */
  recorded: number
  /** The same summary again (a tab re-sends one that reached nobody): not written twice. */
  repeated: number
  /** Dropped: closer than TAB_SUMMARY_MIN_GAP_MS to the tab's previous one. */
  rateLimited: number
  /** Refused, by reason (InvalidSummaryError's, `unsigned`, `unadmitted`). */
  rejected: Record<string, number>
}

export interface BrowserMetricsInit extends TabSummariesInit {
  /** This node's peer id (the `node` column). */
  self: string
  write: HistoryStore['append']
}

export class BrowserMetrics {
  private readonly init: BrowserMetricsInit
  private readonly last = new Map<string, { seq: number, at: number, recordedAt: number }>()
  private readonly counts: TabSummaryStats = { received: 0, recorded: 0, repeated: 0, rateLimited: 0, rejected: {} }
  private off: (() => void) | undefined

  constructor (init: BrowserMetricsInit) {
    this.init = init
  }

  start (): void {
    this.off ??= subscribeTopic({
      pubsub: this.init.pubsub,
      topic: this.init.topic,
      decode: data => decodeTabSummary(data),
      onMessage: (summary, from) => { this.record(summary, from, Date.now()) },
      onReject: err => { this.reject(err instanceof InvalidSummaryError ? err.reason : err === 'unsigned' ? 'unsigned' : 'malformed') }
    })
  }

  stop (): void {
    this.off?.()
    this.off = undefined
  }

  stats (): TabSummaryStats { return { ...this.counts, rejected: { ...this.counts.rejected } } }

  private reject (reason: string): void {
    this.counts.rejected[reason] = (this.counts.rejected[reason] ?? 0) + 1
  }

  /** Write one decoded summary from `peer` (the gossipsub signer), unless it repeats or comes too soon. */
  record (s: TabSummary, peer: string, now: number): void {
    this.counts.received++
    if (this.init.admitted !== undefined && !this.init.admitted(peer)) { this.reject('unadmitted'); return }
    const last = this.last.get(peer)
    if (last !== undefined && last.seq === s.seq && last.at === s.at) { this.counts.repeated++; return }
    if (last !== undefined && now - last.recordedAt < (this.init.minGapMs ?? TAB_SUMMARY_MIN_GAP_MS)) { this.counts.rateLimited++; return }
    this.last.delete(peer) // re-inserted last: the map's order is the forgetting order
    this.last.set(peer, { seq: s.seq, at: s.at, recordedAt: now })
    if (this.last.size > TAB_SUMMARY_PEERS) this.last.delete(this.last.keys().next().value!)
    for (const [metric, value] of Object.entries(s.metrics) as Array<[TabMetric, number]>) {
      void this.init.write('browser_metrics', { ts: now, node: this.init.self, peer, browser: s.browser, version: s.version, backend: s.backend, adapter: s.adapter, metric, value, unit: TAB_METRICS[metric] })
    }
    this.counts.recorded++
  }
}
