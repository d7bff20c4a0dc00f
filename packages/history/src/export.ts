import { mkdirSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { HistoryInputError } from './errors.ts'
import { TABLES } from './tables.ts'
import type { HistoryStore } from './store.ts'

export type ExportFormat = 'json' | 'csv' | 'parquet'
export const EXPORT_FORMATS: ExportFormat[] = ['json', 'csv', 'parquet']

/** What can be exported: every table and the `performance` view. */
export const EXPORTABLE = [...TABLES, 'performance']

export interface ExportInit {
  /** Folder the files are written to (created when missing). */
  dir: string
  /** @default 'json' (newline-delimited JSON, one object per row) */
  format?: ExportFormat
  /** @default EXPORTABLE */
  tables?: string[]
}

/** Export tables with DuckDB's COPY, one file per table (`<dir>/<table>.<format>`); returns the files with their row counts. */
export async function exportHistory (store: Pick<HistoryStore, 'exec' | 'query'>, init: ExportInit): Promise<Array<{ table: string, file: string, rows: number }>> {
  const format = init.format ?? 'json'
  if (!EXPORT_FORMATS.includes(format)) throw new HistoryInputError(`export format must be one of ${EXPORT_FORMATS.join(', ')}, got "${String(format)}"`)
  const tables = init.tables ?? EXPORTABLE
  for (const t of tables) if (!EXPORTABLE.includes(t)) throw new HistoryInputError(`no table "${t}" (tables: ${EXPORTABLE.join(', ')})`)
  const dir = resolve(init.dir)
  mkdirSync(dir, { recursive: true })
  const out: Array<{ table: string, file: string, rows: number }> = []
  for (const table of tables) {
    const file = join(dir, `${table}.${format}`)
    await store.exec(`COPY (SELECT * FROM ${table}) TO '${file.replaceAll("'", "''")}' (FORMAT ${format}${format === 'csv' ? ', HEADER' : ''})`)
    out.push({ table, file, rows: Number((await store.query(`SELECT count(*) AS n FROM ${table}`))[0].n) })
  }
  return out
}
