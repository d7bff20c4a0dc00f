/**
 * What a browser tab measures about itself, by name, with its unit: the names a tab summary
 * (summary.ts) may carry and the `metric`/`unit` of the `browser_metrics` rows they become.
 * Adding a name changes the summary format: bump `TAB_SUMMARY_VERSION`.
 */
export const TAB_METRICS = {
  /** The join benchmark (tiny-gqa2, 32 greedy decode steps) on the tab's backend. */
  bench_decode_tps: 'tokens/s',
  /** Positions the tab forwarded through its stage for the mesh since the page loaded. */
  tokens: 'tokens',
  /** Forward passes (a batch counts once) since the page loaded. */
  passes: 'passes',
  /** Time spent inside forward passes since the page loaded. */
  busy_ms: 'ms',
  /** tokens / busy time: the speed of the tab's compute while it computes. */
  serving_tps: 'tokens/s',
  /** Median and 90th percentile of the compute time of the recent passes (up to 64). */
  pass_ms_p50: 'ms',
  pass_ms_p90: 'ms',
  /** Layers of the stage the tab serves as primary (0: none). */
  stage_layers: 'layers',
  /** The page was hidden when sampled (1) or visible (0). */
  hidden: 'bool',
  /** Time the page spent hidden since it loaded. */
  hidden_ms: 'ms',
  /** `performance.memory.usedJSHeapSize` (Chromium only). */
  js_heap_bytes: 'bytes',
  /** `navigator.deviceMemory` (Chromium only: rounded, at most 8). */
  device_memory_gib: 'GiB',
  /** The memory budget the tab announces to the planner. */
  memory_budget_bytes: 'bytes'
} as const

export type TabMetric = keyof typeof TAB_METRICS
/** A tab's metrics: any subset of `TAB_METRICS`, each a finite number >= 0. */
export type TabMetrics = Partial<Record<TabMetric, number>>

export const TAB_METRIC_NAMES = Object.keys(TAB_METRICS) as TabMetric[]

export function isTabMetric (name: string): name is TabMetric {
  return Object.hasOwn(TAB_METRICS, name)
}
