// `@shardmesh/history/tab`: the browser half of the history, without DuckDB — a tab's
// IndexedDB history, the summary it publishes over gossipsub, and the loop that does both.
export { InvalidSummaryError, TabHistoryError } from '../errors.ts'
export { isTabMetric, TAB_METRIC_NAMES, TAB_METRICS } from './metrics.ts'
export type { TabMetric, TabMetrics } from './metrics.ts'
export { decodeTabSummary, encodeTabSummary, MAX_ADAPTER_LENGTH, MAX_NAME_LENGTH, MAX_TAB_SUMMARY_BYTES, TAB_SUMMARY_TYPE, TAB_SUMMARY_VERSION } from './summary.ts'
export type { TabSummary } from './summary.ts'
export { openTabHistory, RECORDS, TAB_HISTORY_DB, TAB_HISTORY_VERSION, TAB_MAX_RECORDS, TAB_MIGRATIONS, TabHistory } from './store.ts'
export type { TabHistoryInit, TabRecord } from './store.ts'
export { DRIFTING_METRICS, summaryOf, TAB_KEEPALIVE_MS, TAB_RETRY_MS, TAB_SAMPLE_MS, TabRecorder, tabRecorder } from './recorder.ts'
export type { TabRecorderInit, TabRecorderStats, TabSample } from './recorder.ts'
