// The tab's own performance history (@shardmesh/history/tab): what the page measures —
// its join benchmark, what its stage computed and how long each pass took, whether it was
// hidden, memory — sampled every 10 s into IndexedDB (`shardmesh-history`) and published as
// a summary on the mesh's `metrics` topic, where the nodes that record history persist it.
import { openTabHistory, tabRecorder } from '@shardmesh/history/tab'
import type { TabHistory, TabMetrics, TabRecord, TabRecorder, TabRecorderStats, TabSample } from '@shardmesh/history/tab'
import { topicName } from '@shardmesh/mesh'
import type { Detected } from './capabilities.ts'
import type { ComputeStats } from './metered.ts'
import type { BrowserPeer } from './peer.ts'

/** What the page knows when the history samples it. */
export interface TabState {
  detected: Detected | undefined
  backend: string
  benchTokensPerSecond: number | undefined
  compute: ComputeStats
  /** The layer range this tab serves as a primary, if any. */
  stage: [number, number] | undefined
}

/** Time the page has spent hidden since it loaded (visibilitychange). */
const hidden: { ms: number, since: number | undefined } = { ms: 0, since: document.visibilityState === 'hidden' ? performance.now() : undefined }
document.addEventListener('visibilitychange', () => {
  const now = performance.now()
  if (document.visibilityState === 'hidden') hidden.since ??= now
  else if (hidden.since !== undefined) { hidden.ms += now - hidden.since; hidden.since = undefined }
})

const round = (v: number, step: number): number => Math.round(v / step) * step

function percentile (sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]
}

/** The tab's metrics now (names and units: TAB_METRICS of @shardmesh/history). */
export function sampleTab (s: TabState): TabSample {
  const c = s.compute
  const recent = [...c.recentMs].sort((a, b) => a - b)
  const memory = (performance as Performance & { memory?: { usedJSHeapSize: number } }).memory
  const deviceMemory = (navigator as Navigator & { deviceMemory?: number }).deviceMemory
  const metrics: TabMetrics = {
    tokens: c.tokens,
    passes: c.passes,
    busy_ms: round(c.busyMs, 0.1),
    stage_layers: s.stage === undefined ? 0 : s.stage[1] - s.stage[0],
    hidden: document.visibilityState === 'hidden' ? 1 : 0,
    hidden_ms: Math.round(hidden.ms + (hidden.since === undefined ? 0 : performance.now() - hidden.since))
  }
  if (s.benchTokensPerSecond !== undefined) metrics.bench_decode_tps = s.benchTokensPerSecond
  if (c.busyMs > 0) metrics.serving_tps = round(c.tokens / c.busyMs * 1000, 0.1)
  if (recent.length > 0) {
    metrics.pass_ms_p50 = round(percentile(recent, 0.5), 0.01)
    metrics.pass_ms_p90 = round(percentile(recent, 0.9), 0.01)
  }
  if (memory !== undefined) metrics.js_heap_bytes = memory.usedJSHeapSize
  if (deviceMemory !== undefined) metrics.device_memory_gib = deviceMemory
  if (s.detected !== undefined) metrics.memory_budget_bytes = s.detected.memoryBytes
  const a = s.detected?.adapter
  return {
    browser: s.detected?.runtime.name ?? 'browser',
    version: s.detected?.runtime.version ?? '',
    backend: s.backend,
    adapter: s.backend === 'webgpu' && a !== undefined ? (a.description || a.architecture || a.vendor || null) : null,
    metrics
  }
}

export interface TabHistoryHandle {
  recorder: TabRecorder
  store: TabHistory
  /** This tab's records (its peer id), oldest first. */
  records: () => Promise<TabRecord[]>
  stats: () => TabRecorderStats
  stop: () => void
}

/** Open the tab's history and start sampling it and publishing summaries through `peer`'s gossipsub. */
export async function startTabHistory (peer: BrowserPeer, state: () => TabState, onError: (err: Error) => void): Promise<TabHistoryHandle> {
  const store = await openTabHistory()
  const self = peer.node.peerId.toString()
  const topic = topicName(peer.node.services.mesh.meshId, 'metrics')
  const recorder = tabRecorder({
    store,
    peer: self,
    sample: () => sampleTab(state()),
    publish: async data => (await peer.node.services.pubsub.publish(topic, data)).recipients.length,
    onError
  })
  return {
    recorder,
    store,
    records: async () => await store.list({ peer: self }),
    stats: () => recorder.stats(),
    stop: () => { recorder.stop(); store.close() }
  }
}
