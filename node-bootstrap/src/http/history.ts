import type { IncomingMessage, ServerResponse } from 'node:http'
import type { HistoryStore, TabSummaryStats } from '@shardmesh/history'

/** What the history routes read: the node's open store, or why it has none. */
export interface HistorySource {
  store: () => HistoryStore | undefined
  /** Why nothing is recorded (`--db none`, the file held by another process…). */
  unavailable: () => string | undefined
  /** Browser tabs' summaries this node received, recorded and refused (shown by `/peers`). */
  tabSummaries?: () => TabSummaryStats | undefined
}

// loaded on first use: DuckDB's binding stays out of nodes that record nothing
const REPORTS: Record<string, (store: HistoryStore) => Promise<unknown>> = {
  summary: async store => await (await import('@shardmesh/history')).historySummary(store),
  peers: async store => await (await import('@shardmesh/history')).historyPeers(store),
  anomalies: async store => await (await import('@shardmesh/history')).historyAnomalies(store),
  recommendations: async store => await (await import('@shardmesh/history')).historyRecommendations(store)
}

/** The reports `GET /api/history/{summary,peers,anomalies,recommendations}` serves. */
export const HISTORY_REPORTS = Object.keys(REPORTS)

function send (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers })
  res.end(text)
}

/**
 * `GET /api/history` (the summary) and `GET /api/history/{summary,peers,anomalies,recommendations}`,
 * read from this node's history file (see @shardmesh/history). 503 `history_unavailable` when
 * this node records nothing, with the reason.
 */
export function historyHandler (source: HistorySource): (req: IncomingMessage, res: ServerResponse) => Promise<boolean> {
  return async (req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname
    const m = /^\/api\/history(?:\/([a-z]+))?\/?$/.exec(path)
    if (m === null) return false
    const report = REPORTS[m[1] ?? 'summary']
    if (report === undefined) {
      send(res, 404, { error: { code: 'not_found', message: `no history report "${m[1]}" (reports: ${HISTORY_REPORTS.join(', ')})` } })
      return true
    }
    if (req.method !== 'GET') {
      send(res, 405, { error: { code: 'method_not_allowed', message: `${req.method ?? ''} is not allowed on ${path}` } }, { allow: 'GET' })
      return true
    }
    const store = source.store()
    if (store === undefined) {
      send(res, 503, { error: { code: 'history_unavailable', message: source.unavailable() ?? 'this node records no history' } })
      return true
    }
    const body = await report(store)
    const tabs = m[1] === 'peers' ? source.tabSummaries?.() : undefined
    send(res, 200, tabs === undefined ? body : { ...body as object, tabSummaries: tabs })
    return true
  }
}
