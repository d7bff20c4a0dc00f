import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { DuckDBInstance, DuckDBTimestampValue, DuckDBTypeId } from '@duckdb/node-api'
import type { DuckDBAppender, DuckDBConnection, DuckDBValue } from '@duckdb/node-api'
import { DB_MEMORY_LIMIT, DB_THREADS, FLUSH_MS, FLUSH_ROWS } from './constants.ts'
import { HistoryClosedError, HistoryInputError, HistoryLockedError, HistoryReadOnlyError, SchemaVersionError } from './errors.ts'
import { LATEST_VERSION, migrate, schemaVersion } from './schema.ts'
import { COLUMNS } from './tables.ts'
import type { Rows, TableName } from './tables.ts'

/** A JSON-safe row of a query (DuckDB's JSON conversion: BIGINT and TIMESTAMP as strings). */
export type JsonRow = Record<string, unknown>

export interface HistoryInit {
  /** The DuckDB file (created, with its folder, when missing). */
  path: string
  /** Open for queries only: no migration, no writes. @default false */
  readOnly?: boolean
  /** Queued rows are committed at least this often (ms). @default FLUSH_MS */
  flushMs?: number
  /** A commit starts early once this many rows wait. @default FLUSH_ROWS */
  flushRows?: number
  /** DuckDB worker threads. @default DB_THREADS */
  threads?: number
  /** DuckDB memory limit. @default DB_MEMORY_LIMIT */
  memoryLimit?: string
  /** Failed commits (the rows' promises reject too). */
  onError?: (err: Error) => void
}

/** Who writes a history file now: `<path>.owner.json`, so a reader can ask that process over HTTP. */
export interface HistoryOwner {
  pid: number
  /** The HTTP API of the writing node (`GET /api/history/...`). */
  url?: string
  since: number
}

interface Pending { table: TableName, row: Rows[TableName], done: () => void, fail: (e: Error) => void }

/** Paths this process holds read-write (DuckDB's file lock is per process: a second instance here would not be refused). */
const openHere = new Set<string>()

const ownerPath = (path: string): string => `${path}.owner.json`

/** The process writing `path`, if its owner file names a live one. */
export function historyOwner (path: string): HistoryOwner | undefined {
  try {
    const o = JSON.parse(readFileSync(ownerPath(resolve(path)), 'utf8')) as HistoryOwner
    if (!Number.isInteger(o.pid)) return undefined
    process.kill(o.pid, 0) // throws when no such process
    return o
  } catch {
    return undefined
  }
}

/** One cell of a row, as its column's type takes it (`ts` columns: ms since the epoch). */
function appendCell (a: DuckDBAppender, type: DuckDBTypeId, table: string, column: string, v: unknown): void {
  if (v === undefined) throw new HistoryInputError(`${table}.${column} is missing`)
  if (v === null || (typeof v === 'number' && !Number.isFinite(v))) { a.appendNull(); return }
  const wrong = (): HistoryInputError => new HistoryInputError(`${table}.${column} takes a ${DuckDBTypeId[type]}, got ${typeof v}`)
  switch (type) {
    case DuckDBTypeId.VARCHAR: a.appendVarchar(typeof v === 'string' ? v : JSON.stringify(v)); return
    case DuckDBTypeId.BOOLEAN: if (typeof v !== 'boolean') throw wrong(); a.appendBoolean(v); return
    case DuckDBTypeId.DOUBLE: if (typeof v !== 'number') throw wrong(); a.appendDouble(v); return
    case DuckDBTypeId.INTEGER: if (typeof v !== 'number') throw wrong(); a.appendInteger(Math.round(v)); return
    case DuckDBTypeId.BIGINT: if (typeof v !== 'number') throw wrong(); a.appendBigInt(BigInt(Math.round(v))); return
    case DuckDBTypeId.TIMESTAMP: if (typeof v !== 'number') throw wrong(); a.appendTimestamp(new DuckDBTimestampValue(BigInt(Math.round(v)) * 1000n)); return
    default: throw new HistoryInputError(`${table}.${column}: no writer for DuckDB type ${DuckDBTypeId[type]}`)
  }
}

/**
 * One history file, one writer: rows are queued (`append` returns at once with a promise)
 * and committed in batches, one transaction each, off the caller's path; a row's promise
 * resolves once its transaction committed (then it survives a crash of this process).
 * Queries run on the same connection, after the queued rows are committed.
 */
export class HistoryStore {
  readonly path: string
  readonly readOnly: boolean
  private readonly instance: DuckDBInstance
  private readonly conn: DuckDBConnection
  private readonly init: HistoryInit
  private queue: Pending[] = []
  private timer: ReturnType<typeof setTimeout> | undefined
  /** Every operation on the connection, in order. */
  private chain: Promise<unknown> = Promise.resolve()
  private closed = false
  private owner = false

  private constructor (init: HistoryInit, instance: DuckDBInstance, conn: DuckDBConnection) {
    this.init = init
    this.path = resolve(init.path)
    this.readOnly = init.readOnly === true
    this.instance = instance
    this.conn = conn
  }

  static async open (init: HistoryInit): Promise<HistoryStore> {
    const path = resolve(init.path)
    const readOnly = init.readOnly === true
    if (readOnly && !existsSync(path)) throw new HistoryInputError(`no history at ${path}`)
    if (openHere.has(path)) throw new HistoryLockedError(path, process.pid, 'already open in this process')
    if (!readOnly) mkdirSync(dirname(path), { recursive: true })
    let instance: DuckDBInstance
    try {
      instance = await DuckDBInstance.create(path, { access_mode: readOnly ? 'READ_ONLY' : 'READ_WRITE', threads: String(init.threads ?? DB_THREADS), memory_limit: init.memoryLimit ?? DB_MEMORY_LIMIT })
    } catch (err) {
      const msg = (err as Error).message
      if (/Could not set lock|Conflicting lock/i.test(msg)) throw new HistoryLockedError(path, Number(/PID (\d+)/.exec(msg)?.[1]) || undefined, msg)
      throw err
    }
    const conn = await instance.connect()
    try {
      if (readOnly) {
        const v = await schemaVersion(conn)
        if (v !== LATEST_VERSION) throw new SchemaVersionError(`the history at ${path} is at schema version ${v}; this shardmesh reads ${LATEST_VERSION} (open it read-write once to migrate)`)
      } else {
        await migrate(conn)
      }
    } catch (err) {
      conn.closeSync()
      instance.closeSync()
      throw err
    }
    if (!readOnly) openHere.add(path)
    return new HistoryStore(init, instance, conn)
  }

  /** The schema version of the file. */
  async version (): Promise<number> { return await this.serial(async () => await schemaVersion(this.conn)) }

  /** Queue a row; resolves once it is committed. */
  async append<T extends TableName> (table: T, row: Rows[T]): Promise<void> {
    if (this.closed) throw new HistoryClosedError(`the history at ${this.path} is closed`)
    if (this.readOnly) throw new HistoryReadOnlyError(`the history at ${this.path} was opened read-only`)
    if (COLUMNS[table] === undefined) throw new HistoryInputError(`no table ${String(table)}`)
    return await new Promise<void>((resolve, reject) => {
      this.queue.push({ table, row, done: resolve, fail: reject })
      if (this.queue.length >= (this.init.flushRows ?? FLUSH_ROWS)) this.kick(0)
      else if (this.timer === undefined) this.kick(this.init.flushMs ?? FLUSH_MS)
    })
  }

  private kick (ms: number): void {
    clearTimeout(this.timer)
    this.timer = setTimeout(() => {
      this.timer = undefined
      void this.flush().catch(() => {}) // failures reach the rows' promises and onError
    }, ms)
  }

  /** Commit every queued row now (one transaction). */
  async flush (): Promise<void> {
    const batch = this.queue
    this.queue = []
    if (batch.length === 0) return await this.serial(async () => {})
    await this.serial(async () => {
      try {
        await this.conn.run('BEGIN TRANSACTION')
        const byTable = new Map<TableName, Array<Rows[TableName]>>()
        for (const p of batch) {
          const list = byTable.get(p.table) ?? []
          list.push(p.row)
          byTable.set(p.table, list)
        }
        for (const [table, rows] of byTable) await this.insert(table, rows)
        await this.conn.run('COMMIT')
      } catch (err) {
        await this.conn.run('ROLLBACK').catch(() => {})
        for (const p of batch) p.fail(err as Error)
        this.init.onError?.(err as Error)
        throw err
      }
      for (const p of batch) p.done()
    })
  }

  /**
   * Append rows through DuckDB's appender, inside the flush's transaction (a ROLLBACK drops
   * them too). A multi-row `INSERT … VALUES` with bound parameters cost ~130 µs of CPU per row
   * (parsing and binding the statement); the appender ~14 µs (see the README's bench).
   */
  private async insert (table: TableName, rows: Array<Rows[TableName]>): Promise<void> {
    const cols = COLUMNS[table] as string[]
    const appender = await this.conn.createAppender(table)
    try {
      if (appender.columnCount !== cols.length) throw new HistoryInputError(`table ${table} has ${appender.columnCount} columns; this shardmesh writes ${cols.length}`)
      const types = cols.map((_, i) => appender.columnType(i).typeId)
      for (const row of rows) {
        for (let i = 0; i < cols.length; i++) appendCell(appender, types[i], table, cols[i], (row as unknown as Record<string, unknown>)[cols[i]])
        appender.endRow()
      }
      appender.closeSync() // flushes the rows into the open transaction
    } catch (err) {
      // the batch failed (its transaction is rolled back): drop what the appender still holds
      try { appender.clear() } catch {}
      try { appender.closeSync() } catch {}
      throw err
    }
  }

  /** Rows of a query, JSON-safe; queued rows are committed first. */
  async query (sql: string, params: DuckDBValue[] = []): Promise<JsonRow[]> {
    if (this.closed) throw new HistoryClosedError(`the history at ${this.path} is closed`)
    if (!this.readOnly) await this.flush()
    return await this.serial(async () => (await this.conn.runAndReadAll(sql, params)).getRowObjectsJson() as JsonRow[])
  }

  /** Run a statement that returns nothing of interest (COPY, CHECKPOINT). */
  async exec (sql: string): Promise<void> {
    if (this.closed) throw new HistoryClosedError(`the history at ${this.path} is closed`)
    if (!this.readOnly) await this.flush()
    await this.serial(async () => { await this.conn.run(sql) })
  }

  /** Rows waiting for their commit. */
  get pending (): number { return this.queue.length }

  /** Say in `<path>.owner.json` that this process writes the file and where its HTTP API is. */
  advertise (url?: string): void {
    if (this.readOnly || this.closed) return
    const o: HistoryOwner = { pid: process.pid, ...(url === undefined ? {} : { url }), since: Date.now() }
    writeFileSync(ownerPath(this.path), JSON.stringify(o) + '\n')
    this.owner = true
  }

  /** Commit what is queued and close the file. */
  async close (): Promise<void> {
    if (this.closed) return
    clearTimeout(this.timer)
    if (!this.readOnly) await this.flush().catch(() => {})
    this.closed = true
    await this.chain.catch(() => {})
    this.conn.closeSync()
    this.instance.closeSync()
    if (this.owner) rmSync(ownerPath(this.path), { force: true })
    openHere.delete(this.path)
  }

  private async serial<R> (op: () => Promise<R>): Promise<R> {
    const next = this.chain.then(op, op)
    this.chain = next.catch(() => {})
    return await next
  }
}

/** Open (and migrate) a history file; see `HistoryStore`. */
export async function openHistory (init: HistoryInit): Promise<HistoryStore> {
  return await HistoryStore.open(init)
}
