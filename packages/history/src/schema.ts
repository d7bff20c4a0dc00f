import type { DuckDBConnection } from '@duckdb/node-api'
import { SchemaVersionError } from './errors.ts'

/**
 * The schema, as migrations applied in order, each in one transaction with its row in
 * `schema_version`. Never edit a released migration: add the next one.
 */
export const MIGRATIONS: Array<{ version: number, description: string, sql: string }> = [
  {
    version: 1,
    description: 'plans, their stages, generations and their timings, recoveries, peer samples and membership events',
    sql: `
      CREATE TABLE sharding_runs (
        id VARCHAR PRIMARY KEY, ts TIMESTAMP NOT NULL, node VARCHAR NOT NULL,
        model VARCHAR NOT NULL, plan_version INTEGER NOT NULL, strategy VARCHAR NOT NULL,
        n_layers INTEGER NOT NULL, coordinator VARCHAR, term INTEGER, stages INTEGER NOT NULL);
      CREATE TABLE plan_stages (
        run_id VARCHAR NOT NULL, stage INTEGER NOT NULL, l0 INTEGER NOT NULL, l1 INTEGER NOT NULL,
        peer VARCHAR NOT NULL, standbys VARCHAR NOT NULL, bytes BIGINT NOT NULL, reason VARCHAR NOT NULL);
      CREATE TABLE generations (
        id VARCHAR PRIMARY KEY, ts TIMESTAMP NOT NULL, node VARCHAR NOT NULL, model VARCHAR NOT NULL,
        plan_version INTEGER, route VARCHAR NOT NULL, prompt_tokens INTEGER NOT NULL, tokens INTEGER NOT NULL,
        finish_reason VARCHAR NOT NULL, recoveries INTEGER NOT NULL,
        prefill_ms DOUBLE NOT NULL, decode_ms DOUBLE NOT NULL,
        prefill_tps DOUBLE NOT NULL, decode_tps DOUBLE NOT NULL);
      CREATE TABLE timings (
        generation_id VARCHAR, ts TIMESTAMP NOT NULL, node VARCHAR NOT NULL, scope VARCHAR NOT NULL,
        stage INTEGER, peer VARCHAR, l0 INTEGER, l1 INTEGER, component VARCHAR NOT NULL,
        ms DOUBLE NOT NULL, tokens INTEGER);
      CREATE TABLE recovery_events (
        ts TIMESTAMP NOT NULL, node VARCHAR NOT NULL, session VARCHAR NOT NULL, failed VARCHAR NOT NULL,
        stages VARCHAR NOT NULL, class VARCHAR NOT NULL, level VARCHAR NOT NULL, strategy VARCHAR NOT NULL,
        path VARCHAR NOT NULL, detection_ms DOUBLE NOT NULL, stall_ms DOUBLE NOT NULL,
        tokens_replayed INTEGER NOT NULL, ok BOOLEAN NOT NULL, error VARCHAR);
      CREATE TABLE peer_samples (
        ts TIMESTAMP NOT NULL, node VARCHAR NOT NULL, peer VARCHAR NOT NULL, runtime VARCHAR NOT NULL,
        backend VARCHAR NOT NULL, model VARCHAR NOT NULL, op VARCHAR NOT NULL, value DOUBLE NOT NULL,
        unit VARCHAR NOT NULL, source VARCHAR NOT NULL);
      CREATE TABLE peer_events (
        ts TIMESTAMP NOT NULL, node VARCHAR NOT NULL, peer VARCHAR NOT NULL, status VARCHAR NOT NULL, reason VARCHAR);
      CREATE INDEX peer_samples_peer ON peer_samples (peer, ts);
    `
  },
  {
    version: 2,
    description: 'analysis results (capability scores, recommendations), browser metrics, the performance view',
    sql: `
      CREATE TABLE capability_scores (
        ts TIMESTAMP NOT NULL, peer VARCHAR NOT NULL, runtime VARCHAR NOT NULL, backend VARCHAR NOT NULL,
        score DOUBLE NOT NULL, confidence DOUBLE NOT NULL, samples INTEGER NOT NULL, speed DOUBLE NOT NULL, basis VARCHAR NOT NULL);
      CREATE TABLE recommendations (
        ts TIMESTAMP NOT NULL, kind VARCHAR NOT NULL, subject VARCHAR NOT NULL, model VARCHAR,
        value VARCHAR NOT NULL, reason VARCHAR NOT NULL);
      CREATE TABLE browser_metrics (
        ts TIMESTAMP NOT NULL, node VARCHAR NOT NULL, peer VARCHAR NOT NULL, browser VARCHAR NOT NULL,
        version VARCHAR, backend VARCHAR NOT NULL, adapter VARCHAR, metric VARCHAR NOT NULL, value DOUBLE NOT NULL);
      CREATE VIEW performance AS
        SELECT runtime, backend, model, op, unit, count(*) AS samples, median(value) AS median,
               quantile_cont(value, 0.1) AS p10, quantile_cont(value, 0.9) AS p90,
               min(ts) AS first_at, max(ts) AS last_at
        FROM peer_samples GROUP BY runtime, backend, model, op, unit;
    `
  },
  {
    version: 3,
    description: 'browser_metrics gets the unit of each metric (written from the summaries tabs publish over gossipsub)',
    sql: `
      ALTER TABLE browser_metrics ADD COLUMN unit VARCHAR;
    `
  }
]

export const LATEST_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version

/** The version a file's schema is at (0: empty file). */
export async function schemaVersion (conn: DuckDBConnection): Promise<number> {
  const exists = await conn.runAndReadAll("SELECT count(*) AS n FROM duckdb_tables() WHERE table_name = 'schema_version' AND schema_name = 'main'")
  if (Number(exists.getRowObjects()[0].n) === 0) return 0
  const r = await conn.runAndReadAll('SELECT coalesce(max(version), 0) AS v FROM schema_version')
  return Number(r.getRowObjects()[0].v)
}

/**
 * Bring the file's schema to `to` (default the latest): each missing migration in order, in
 * its own transaction (a crash leaves the file at the last whole version). Returns the
 * versions applied.
 */
export async function migrate (conn: DuckDBConnection, to = LATEST_VERSION): Promise<number[]> {
  await conn.run('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at TIMESTAMP NOT NULL, description VARCHAR NOT NULL)')
  const at = await schemaVersion(conn)
  if (at > LATEST_VERSION) throw new SchemaVersionError(`the history schema is at version ${at}; this shardmesh knows up to ${LATEST_VERSION} (written by a newer version?)`)
  const applied: number[] = []
  for (const m of MIGRATIONS) {
    if (m.version <= at || m.version > to) continue
    await conn.run('BEGIN TRANSACTION')
    try {
      await conn.run(m.sql)
      await conn.run('INSERT INTO schema_version VALUES (?, now()::TIMESTAMP, ?)', [m.version, m.description])
      await conn.run('COMMIT')
    } catch (err) {
      await conn.run('ROLLBACK')
      throw err
    }
    applied.push(m.version)
  }
  return applied
}
