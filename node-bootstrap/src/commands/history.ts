import { join } from 'node:path'
import type { ExportFormat, HistoryStore } from '@shardmesh/history'
import { CliError } from '../errors.ts'
import { storeDir } from './import.ts'

type Values = Record<string, string | boolean | undefined>

export const HISTORY_ACTIONS = ['summary', 'peers', 'anomalies', 'recommend', 'export'] as const
type Action = typeof HISTORY_ACTIONS[number]

/** The API report behind each action (export has none: it needs the file). */
const ROUTE: Record<Exclude<Action, 'export'>, string> = { summary: 'summary', peers: 'peers', anomalies: 'anomalies', recommend: 'recommendations' }

/** `start`'s default history file: <store>/history/bootstrap.duckdb. */
export function bootstrapHistoryPath (values: Values): string {
  return join(storeDir(values), 'history', 'bootstrap.duckdb')
}

async function fromApi (url: string, action: Exclude<Action, 'export'>): Promise<unknown> {
  const target = `${url.replace(/\/$/, '')}/api/history/${ROUTE[action]}`
  let res: Response
  try {
    res = await fetch(target, { signal: AbortSignal.timeout(30_000) })
  } catch (err) {
    throw new CliError(`cannot reach ${target}: ${(err as Error).message}`)
  }
  const body = await res.json() as { error?: { message: string } }
  if (!res.ok) throw new CliError(`${target}: ${res.status} ${body.error?.message ?? ''}`)
  return body
}

async function fromFile (store: HistoryStore, action: Action, values: Values): Promise<unknown> {
  const h = await import('@shardmesh/history')
  switch (action) {
    case 'summary': return await h.historySummary(store)
    case 'peers': return await h.historyPeers(store)
    case 'anomalies': return await h.historyAnomalies(store)
    case 'recommend': return await h.historyRecommendations(store)
    case 'export': {
      const format = String(values.format ?? 'json') as ExportFormat
      if (!h.EXPORT_FORMATS.includes(format)) throw new CliError(`--format must be one of ${h.EXPORT_FORMATS.join(', ')}, got "${format}"`)
      const tables = typeof values.tables === 'string' ? values.tables.split(',').map(t => t.trim()).filter(t => t !== '') : undefined
      try {
        return { files: await h.exportHistory(store, { dir: String(values.out ?? 'history-export'), format, tables }) }
      } catch (err) {
        if ((err as Error).name === 'HistoryInputError') throw new CliError((err as Error).message)
        throw err
      }
    }
  }
}

/**
 * `shardmesh history ACTION`: read a history file (`--db`, default `start`'s) read-only; while
 * a running node holds it, through that node's `GET /api/history/...` (named in
 * `<db>.owner.json`, or `--url`).
 */
export async function historyCommand (values: Values): Promise<void> {
  const action = String(values.action ?? 'summary') as Action
  if (!HISTORY_ACTIONS.includes(action)) throw new CliError(`history takes one of ${HISTORY_ACTIONS.join(', ')}, got "${action}"`)
  let source: string
  let result: unknown
  if (typeof values.url === 'string') {
    if (action === 'export') throw new CliError('export reads the file itself (--db), not a node\'s API')
    source = values.url
    result = await fromApi(values.url, action)
  } else {
    const path = typeof values.db === 'string' ? values.db : bootstrapHistoryPath(values)
    const { historyOwner, openHistory } = await import('@shardmesh/history')
    let store: HistoryStore | undefined
    try {
      store = await openHistory({ path, readOnly: true })
    } catch (err) {
      const e = err as Error
      const owner = e.name === 'HistoryLockedError' ? historyOwner(path) : undefined
      if (owner?.url === undefined || action === 'export') {
        const hint = e.name === 'HistoryLockedError' ? (action === 'export' ? ' (stop that node to export)' : ' (pass --url of that node\'s HTTP API)') : ''
        throw new CliError(`${e.message}${hint}`)
      }
      source = owner.url
      result = await fromApi(owner.url, action as Exclude<Action, 'export'>)
    }
    if (store !== undefined) {
      source = store.path
      try {
        result = await fromFile(store, action, values)
      } finally {
        await store.close()
      }
    }
  }
  if (values.json === true) {
    process.stdout.write(JSON.stringify({ source: source!, [action]: result }) + '\n')
  } else {
    process.stdout.write(`history from ${source!}\n${text(action, result)}\n`)
  }
}

const fmt = (v: unknown, digits = 1): string => typeof v === 'number' ? v.toFixed(digits) : v === null || v === undefined ? '-' : String(v)
const short = (id: unknown): string => String(id).slice(-8)

/** The reports for people (the JSON has everything). */
function text (action: Action, r: unknown): string {
  const o = r as Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any
  switch (action) {
    case 'summary': {
      const lines = [`rows: ${Object.entries(o.counts as Record<string, number>).filter(([, n]) => n > 0).map(([t, n]) => `${t} ${n}`).join(', ') || 'none'}`]
      const p = o.latestPlan
      if (p !== null) {
        lines.push(`latest plan: ${p.model} v${p.plan_version} (${p.strategy}, ${p.n_layers} layers) at ${p.ts}`)
        for (const s of p.stages) lines.push(`  stage ${s.stage} [${s.l0}, ${s.l1}) ${short(s.peer)}  standbys ${s.standbys.map(short).join(', ') || '-'}`)
      }
      lines.push(`generations: ${o.generations.count}, median decode ${fmt(o.generations.medianDecodeTps)} tok/s, prefill ${fmt(o.generations.medianPrefillTps)} tok/s`)
      for (const t of o.timings) lines.push(`  ${t.scope} ${t.component}: ${t.count} × median ${fmt(t.median_ms)} ms, p90 ${fmt(t.p90_ms)} ms`)
      lines.push(`recoveries: ${o.recoveries.count}`)
      for (const s of o.recoveries.byStrategy) lines.push(`  ${s.strategy}/${s.path}: ${s.count}, ${Math.round(100 * s.success_rate)}% ok, median stall ${fmt(s.median_stall_ms, 0)} ms`)
      return lines.join('\n')
    }
    case 'peers': {
      const peers = o.peers.length === 0
        ? ['no peer samples']
        : o.peers.map((p: any) => `${short(p.peer)}  score ${fmt(p.score?.score)} (confidence ${fmt(p.score?.confidence, 2)}, ${p.samples} samples)  latest ${fmt(p.latest)} tok/s  ${p.anomaly?.flagged === true ? `ANOMALY z ${fmt(p.anomaly.z)}` : ''}${p.trend?.degrading === true ? ' degrading' : ''}  ${p.status ?? ''}`) // eslint-disable-line @typescript-eslint/no-explicit-any
      // browser tabs: each one's latest summary (metrics with their units)
      const tabs = (o.browser ?? []).map((t: any) => `${short(t.peer)}  ${t.browser}${t.version === null ? '' : ` ${t.version}`} on ${t.backend}${t.adapter === null ? '' : ` (${t.adapter})`}, ${t.summaries} summaries: ${Object.entries(t.metrics).map(([k, m]: [string, any]) => `${k} ${fmt(m.value)}${m.unit === null ? '' : ` ${m.unit}`}`).join(', ')}`) // eslint-disable-line @typescript-eslint/no-explicit-any
      return [...peers, ...(tabs.length === 0 ? [] : ['browser tabs:', ...tabs.map((t: string) => `  ${t}`)])].join('\n')
    }
    case 'anomalies':
      return [`rule: ${o.rule}; ${o.evaluated} peer(s) evaluated`, ...(o.anomalies.length === 0 ? ['no anomaly'] : o.anomalies.map((a: any) => `${a.peer}: ${a.direction}, recent ${fmt(a.recent)} vs median ${fmt(a.baseline)} ± ${fmt(a.spread)} (z ${fmt(a.z)})`)), ...o.degrading.map((t: any) => `${t.peer}: degrading ${fmt(100 * t.relativeSlopePerHour)}%/h over ${t.samples} samples`)].join('\n') // eslint-disable-line @typescript-eslint/no-explicit-any
    case 'recommend':
      return o.recommendations.length === 0 ? 'no recommendation (no samples or recoveries yet)' : o.recommendations.map((x: any) => `${x.kind} ${x.subject}${x.model === undefined ? '' : ` (${x.model})`}: ${x.value} — ${x.reason}`).join('\n') // eslint-disable-line @typescript-eslint/no-explicit-any
    case 'export':
      return o.files.map((f: any) => `${f.table}: ${f.rows} rows → ${f.file}`).join('\n') // eslint-disable-line @typescript-eslint/no-explicit-any
  }
}
