/** Queued rows are written at least this often (ms). */
export const FLUSH_MS = 1000
/** A flush starts early once this many rows wait. */
export const FLUSH_ROWS = 512
/** DuckDB threads of a recording node: the writer must not compete with compute for cores. */
export const DB_THREADS = 1
/** DuckDB memory limit of a recording node. */
export const DB_MEMORY_LIMIT = '128MB'

/** Anomaly: |z| of a peer's recent median against its own history at or above this. */
export const ANOMALY_Z = 3
/** Samples of a peer's history (before the recent window) needed to judge an anomaly. */
export const ANOMALY_MIN_HISTORY = 8
/** The most recent samples of a peer that form its "recent" window. */
export const RECENT_SAMPLES = 5
/** Floor of the history's standard deviation, as a fraction of its mean (a perfectly steady series would make any change infinite z). */
export const MIN_RELATIVE_SD = 0.02
/** A trend is "degrading" when the fitted slope loses at least this fraction of the mean per hour. */
export const DEGRADING_PER_HOUR = 0.1
/** Samples a peer needs before its history speed may override what it announces (planner input). */
export const PLANNER_MIN_SAMPLES = 5
/** Capability confidence reaches 1 at this many samples (scaled down by the series' spread). */
export const CONFIDENT_SAMPLES = 30
/** Peers whose recoveries (as a failed hop) reach this count in the window are recommended against. */
export const AVOID_FAILURES = 3
/** Window of the analysis (ms): samples and recoveries older than this are not scored. */
export const ANALYSIS_WINDOW_MS = 7 * 24 * 3600_000
