import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { DuckDBInstance } from '@duckdb/node-api'
import { afterEach, describe, expect, it } from 'vitest'
import { EXPORTABLE, HistoryLockedError, LATEST_VERSION, exportHistory, migrate, openHistory } from '../src/index.ts'
import type { HistoryStore, Rows } from '../src/index.ts'

const WRITER = join(import.meta.dirname, 'fixtures', 'writer.ts')
const dirs: string[] = []
const children: ChildProcess[] = []
const stores: HistoryStore[] = []

function tmp (): string {
  const d = mkdtempSync(join(tmpdir(), 'history-'))
  dirs.push(d)
  return d
}

afterEach(async () => {
  for (const s of stores.splice(0)) await s.close()
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

async function open (path: string, readOnly = false): Promise<HistoryStore> {
  const s = await openHistory({ path, readOnly })
  stores.push(s)
  return s
}

/** Spawn the writer fixture; resolves once it printed `ready`. Every stdout line goes to `onLine`. */
async function writer (path: string, mode: 'write' | 'hold', onLine: (l: string) => void = () => {}): Promise<ChildProcess> {
  const child = spawn(process.execPath, [WRITER, path, mode], { stdio: ['ignore', 'pipe', 'pipe'] })
  children.push(child)
  let err = ''
  child.stderr!.on('data', d => { err += String(d) })
  const lines = createInterface({ input: child.stdout! })
  await new Promise<void>((resolve, reject) => {
    lines.on('line', l => { if (l === 'ready') resolve(); else onLine(l) })
    child.once('exit', code => { reject(new Error(`writer exited ${String(code)}: ${err}`)) })
  })
  return child
}

const sample = (i: number): Rows['peer_samples'] => ({ ts: 1_700_000_000_000 + i, node: 'n', peer: `p${i % 3}`, runtime: 'node', backend: 'cpu', model: 'm', op: 'decode', value: 100 + i, unit: 'tokens/s', source: 'test' })

describe('history store', () => {
  it('creates the schema at the latest version, one schema_version row per migration', async () => {
    const s = await open(join(tmp(), 'h.duckdb'))
    expect(await s.version()).toBe(LATEST_VERSION)
    const rows = await s.query('SELECT version FROM schema_version ORDER BY version')
    expect(rows.map(r => r.version)).toEqual(Array.from({ length: LATEST_VERSION }, (_, i) => i + 1))
  })

  it('opens a file at schema version 1 and migrates it, keeping its rows', async () => {
    const path = join(tmp(), 'v1.duckdb')
    const inst = await DuckDBInstance.create(path)
    const conn = await inst.connect()
    expect(await migrate(conn, 1)).toEqual([1])
    await conn.run("INSERT INTO peer_samples VALUES (now()::TIMESTAMP, 'n', 'old-peer', 'node', 'cpu', 'm', 'decode', 42, 'tokens/s', 'v1')")
    await expect(conn.run('SELECT * FROM capability_scores')).rejects.toThrow(/capability_scores/)
    conn.closeSync()
    inst.closeSync()

    const s = await open(path)
    expect(await s.version()).toBe(LATEST_VERSION)
    expect((await s.query('SELECT peer, value FROM peer_samples'))).toEqual([{ peer: 'old-peer', value: 42 }])
    expect((await s.query('SELECT count(*) AS n FROM capability_scores'))[0].n).toBe('0')
    expect((await s.query('SELECT samples FROM performance'))[0].samples).toBe('1')
  })

  it('opens a file at schema version 2 and migrates it: browser_metrics keeps its rows and gets a unit column', async () => {
    const path = join(tmp(), 'v2.duckdb')
    const inst = await DuckDBInstance.create(path)
    const conn = await inst.connect()
    expect(await migrate(conn, 2)).toEqual([1, 2])
    await conn.run("INSERT INTO browser_metrics VALUES (now()::TIMESTAMP, 'n', 'tab', 'chrome', '142', 'webgpu', NULL, 'tokens', 7)")
    conn.closeSync()
    inst.closeSync()

    const s = await open(path)
    expect(await s.version()).toBe(LATEST_VERSION)
    expect(LATEST_VERSION).toBeGreaterThanOrEqual(3)
    await s.append('browser_metrics', { ts: Date.now(), node: 'n', peer: 'tab', browser: 'chrome', version: '142', backend: 'webgpu', adapter: null, metric: 'bench_decode_tps', value: 118.5, unit: 'tokens/s' })
    expect(await s.query('SELECT metric, value, unit FROM browser_metrics ORDER BY ts')).toEqual([
      { metric: 'tokens', value: 7, unit: null },
      { metric: 'bench_decode_tps', value: 118.5, unit: 'tokens/s' }
    ])
  })

  it('keeps every acknowledged row across a close and a reopen', async () => {
    const path = join(tmp(), 'h.duckdb')
    const s = await openHistory({ path })
    await Promise.all(Array.from({ length: 500 }, async (_, i) => { await s.append('peer_samples', sample(i)) }))
    await s.close()
    const again = await open(path)
    const [r] = await again.query('SELECT count(*) AS n, min(value) AS lo, max(value) AS hi FROM peer_samples')
    expect(r).toEqual({ n: '500', lo: 100, hi: 599 })
  })

  it('loses no acknowledged row when its writer is SIGKILLed mid-write, and the file opens and takes writes again', async () => {
    const path = join(tmp(), 'h.duckdb')
    const acked: number[] = []
    let enough: () => void
    const reached = new Promise<void>(resolve => { enough = resolve })
    const child = await writer(path, 'write', l => {
      const m = /^ack (\d+)$/.exec(l)
      if (m !== null) acked.push(Number(m[1]))
      if (acked.length >= 2000) enough()
    })
    await reached
    child.kill('SIGKILL')
    await new Promise(resolve => child.once('exit', resolve))
    expect(acked.length).toBeGreaterThanOrEqual(2000)

    const s = await open(path)
    const stored = new Set((await s.query("SELECT value FROM peer_samples WHERE op = 'seq'")).map(r => Number(r.value)))
    const lost = acked.filter(i => !stored.has(i))
    expect(lost).toEqual([])
    await s.append('peer_samples', sample(1))
    expect((await s.query("SELECT count(*) AS n FROM peer_samples WHERE op = 'decode'"))[0].n).toBe('1')
  }, 60_000)

  it('refuses a second writer: another process holding the file gets HistoryLockedError naming its pid, read-only too', async () => {
    const path = join(tmp(), 'h.duckdb')
    const child = await writer(path, 'hold')
    const err = await openHistory({ path }).then(() => { throw new Error('opened') }, (e: unknown) => e as HistoryLockedError)
    expect(err).toBeInstanceOf(HistoryLockedError)
    expect(err.name).toBe('HistoryLockedError')
    expect(err.pid).toBe(child.pid)
    const ro = await openHistory({ path, readOnly: true }).then(() => { throw new Error('opened') }, (e: unknown) => e as Error)
    expect(ro.name).toBe('HistoryLockedError')
    child.kill('SIGKILL')
    await new Promise(resolve => child.once('exit', resolve))
    const s = await open(path) // the lock goes with the process
    expect(await s.version()).toBe(LATEST_VERSION)
  }, 30_000)

  it('refuses a second open of the same file in this process (DuckDB\'s file lock does not)', async () => {
    const path = join(tmp(), 'h.duckdb')
    await open(path)
    const err = await openHistory({ path }).then(() => { throw new Error('opened') }, (e: unknown) => e as HistoryLockedError)
    expect(err.name).toBe('HistoryLockedError')
    expect(err.pid).toBe(process.pid)
  })

  it('serialises concurrent appends and queries of one store', async () => {
    const s = await open(join(tmp(), 'h.duckdb'))
    const writes = Array.from({ length: 300 }, async (_, i) => { await s.append('peer_samples', sample(i)) })
    const reads = Array.from({ length: 10 }, async () => await s.query('SELECT count(*) AS n FROM peer_samples'))
    await Promise.all([...writes, ...reads])
    expect((await s.query('SELECT count(*) AS n FROM peer_samples'))[0].n).toBe('300')
  })

  it('writes every column type through the appender, and a bad row fails its batch as a whole (rolled back) without breaking the store', async () => {
    const s = await open(join(tmp(), 'h.duckdb'))
    const at = Date.UTC(2026, 10, 3, 12, 0, 0, 250)
    await s.append('recovery_events', { ts: at, node: 'n', session: 's1', failed: ['p1', 'p2'], stages: [1], class: 'CRASH', level: 'medium', strategy: 'failover', path: 'replay', detection_ms: 12.5, stall_ms: 80, tokens_replayed: 7, ok: true, error: null })
    await s.append('plan_stages', { run_id: 'r', stage: 0, l0: 0, l1: 3, peer: 'p1', standbys: [], bytes: 2 ** 40, reason: 'why' })
    const [e] = await s.query('SELECT epoch_ms(ts) AS ms, failed, stages, detection_ms, tokens_replayed, ok, error FROM recovery_events')
    expect(e).toEqual({ ms: String(at), failed: '["p1","p2"]', stages: '[1]', detection_ms: 12.5, tokens_replayed: 7, ok: true, error: null })
    expect((await s.query('SELECT bytes FROM plan_stages'))[0].bytes).toBe(String(2 ** 40))

    const good = s.append('peer_samples', sample(1))
    const bad = s.append('peer_samples', { ...sample(2), value: 'fast' as unknown as number })
    const [g, b] = await Promise.allSettled([good, bad])
    expect(g.status).toBe('rejected') // one transaction per batch: its good row goes with it
    expect(b.status === 'rejected' && (b.reason as Error).name).toBe('HistoryInputError')
    expect(b.status === 'rejected' && (b.reason as Error).message).toMatch(/peer_samples\.value takes a DOUBLE/)
    await s.append('peer_samples', sample(3))
    expect(await s.query('SELECT value FROM peer_samples')).toEqual([{ value: 103 }])
  })

  it('exports every table as JSON, CSV and Parquet with the rows it holds', async () => {
    const dir = tmp()
    const s = await open(join(dir, 'h.duckdb'))
    for (let i = 0; i < 7; i++) await s.append('peer_samples', sample(i))
    for (const format of ['json', 'csv', 'parquet'] as const) {
      const files = await exportHistory(s, { dir: join(dir, format), format })
      expect(files.map(f => f.table)).toEqual(EXPORTABLE)
      for (const f of files) expect(existsSync(f.file)).toBe(true)
      const samples = files.find(f => f.table === 'peer_samples')!
      expect(samples.rows).toBe(7)
      const reader = format === 'json' ? 'read_json_auto' : format === 'csv' ? 'read_csv_auto' : 'read_parquet'
      expect((await s.query(`SELECT count(*) AS n, sum(value) AS v FROM ${reader}('${samples.file}')`))[0]).toEqual({ n: '7', v: 721 })
    }
    await expect(exportHistory(s, { dir, format: 'xml' as 'json' })).rejects.toThrow(/format must be/)
    await expect(exportHistory(s, { dir, tables: ['nope'] })).rejects.toThrow(/no table "nope"/)
  })
})
