/** Another process holds the history file (DuckDB allows one process with a file open). */
export class HistoryLockedError extends Error {
  name = 'HistoryLockedError'
  readonly path: string
  /** The holder's process id, when DuckDB names it. */
  readonly pid: number | undefined
  constructor (path: string, pid: number | undefined, detail: string) {
    super(`the history file ${path} is held by ${pid === undefined ? 'another process' : `process ${pid}`}: ${detail}`)
    this.path = path
    this.pid = pid
  }
}

/** The file was written by a newer shardmesh (its schema version is above every migration known here). */
export class SchemaVersionError extends Error {
  name = 'SchemaVersionError'
}

/** A write or query after `close()`. */
export class HistoryClosedError extends Error {
  name = 'HistoryClosedError'
}

/** A write to a store opened read-only. */
export class HistoryReadOnlyError extends Error {
  name = 'HistoryReadOnlyError'
}

/** Bad arguments: an unknown table or export format, a row missing a column. */
export class HistoryInputError extends Error {
  name = 'HistoryInputError'
}

/**
 * A tab summary (tab/summary.ts) was refused; `reason` is the counter it is reported under:
 * `oversized`, `malformed`, `version`, `unknown-field`, `unknown-metric`, `bad-value`.
 */
export class InvalidSummaryError extends Error {
  name = 'InvalidSummaryError'
  readonly reason: string
  constructor (reason: string, message: string) {
    super(message)
    this.reason = reason
  }
}

/** The tab's IndexedDB history was written by a newer version of the page, or cannot be opened. */
export class TabHistoryError extends Error {
  name = 'TabHistoryError'
}
