// The dashboard: follows `/api/events` (a snapshot every second and on every change) and
// polls `/api/history/*` for the recorded history.
import './style.css'
import { historyChart, liveChart, recoveryChart } from './charts.ts'
import { byId, el, rows, short } from './dom.ts'
import { KeyRequiredError, api, apiKey, follow, setApiKey } from './feed.ts'
import { renderLive, renderPeers, renderRecoveries, renderStages, renderSummary } from './panels.ts'
import { LINK_COLORS, drawTopology } from './topology.ts'
import type { Snapshot } from './types.ts'

/** How often the history charts are read again. */
const HISTORY_EVERY_MS = 10_000

const tps = liveChart(byId('tps-chart'))
const recoveries = recoveryChart(byId('recovery-chart'))
const history = historyChart(byId('history-chart'))
byId('legend').replaceChildren(...Object.entries(LINK_COLORS).map(([kind, color]) => el('li', { style: `--c: ${color}` }, kind)))

function render (s: Snapshot): void {
  const stagesOf = new Map<string, string>()
  s.mesh.plan?.stages.forEach((st, i) => {
    stagesOf.set(st.primary, `stage ${i}`)
    for (const id of st.standbys) if (!stagesOf.has(id)) stagesOf.set(id, `standby ${i}`)
  })
  renderSummary(s)
  drawTopology(byId('topology') as unknown as SVGSVGElement, s.self, s.mesh, stagesOf)
  renderPeers(s.mesh, s.self)
  renderStages(s.mesh)
  renderLive(s)
  renderRecoveries(s.mesh)
  if (s.live !== undefined) tps.add(s.at, s.live.tokensPerSecond)
  recoveries.set(s.mesh.recoveries ?? [], s.at)
  document.body.dataset.updated = String(s.at)
}

const ts = (v: string | number): number => typeof v === 'number' ? v : Date.parse(`${v.replace(' ', 'T')}Z`) // DuckDB TIMESTAMP: UTC

async function readHistory (): Promise<void> {
  const note = byId('history-note')
  try {
    const summary = await api('history/summary')
    if (!summary.ok) { note.textContent = ((await summary.json()) as { error?: { message?: string } }).error?.message ?? `unavailable (${summary.status})`; return }
    const body = await summary.json() as { path: string, generations: { count: number, recent: Array<{ ts: string | number, decode_tps: number | null, prefill_tps: number | null }> } }
    note.textContent = `${body.generations.count} generations recorded in ${body.path} (the latest ${body.generations.recent.length} charted)`
    history.set(body.generations.recent.map(r => ({ ...r, ts: ts(r.ts) })))
    const peers = await api('history/peers')
    if (!peers.ok) return
    const list = (await peers.json() as { peers: Array<{ peer: string, samples: number, latest: number, score?: { score: number, confidence: number }, trend?: { slopePerHour?: number, degrading?: boolean }, anomaly?: { z: number, direction?: string, flagged?: boolean } }> }).peers
    rows(byId<HTMLTableElement>('history-peers'), list.map(p => el('tr', {},
      el('td', { class: 'mono', title: p.peer }, short(p.peer)),
      el('td', {}, String(p.samples)),
      el('td', {}, p.latest.toFixed(0)),
      el('td', {}, p.score === undefined ? '–' : `${p.score.score.toFixed(0)} (confidence ${p.score.confidence.toFixed(2)})`),
      el('td', {}, p.trend?.degrading === true ? 'degrading' : '–'),
      el('td', {}, p.anomaly?.flagged === true ? `z = ${p.anomaly.z.toFixed(1)} ${p.anomaly.direction ?? ''}` : '–')
    )))
  } catch (err) {
    if (err instanceof KeyRequiredError) return // the feed asks for the key
    note.textContent = `could not read the history: ${(err as Error).message}`
  }
}

let controller = new AbortController()
function start (): void {
  controller.abort()
  controller = new AbortController()
  const feed = byId('feed')
  void follow(render, (state, detail) => {
    feed.dataset.state = state
    feed.textContent = state === 'live' ? 'live' : state === 'key' ? 'API key needed' : `reconnecting (${detail ?? ''})`
    if (state === 'key') {
      byId('key-form').hidden = false
      byId('key-error').textContent = detail ?? ''
    }
  }, controller.signal)
  void readHistory()
}

byId<HTMLFormElement>('key-form').addEventListener('submit', e => {
  e.preventDefault()
  setApiKey(byId<HTMLInputElement>('key').value.trim())
  byId('key-form').hidden = true
  start()
})
// a key pasted into the address bar of an open page (`#key=…`)
window.addEventListener('hashchange', () => {
  if (!/(?:^#|&)key=/.test(location.hash)) return
  apiKey()
  byId('key-form').hidden = true
  start()
})
setInterval(() => { void readHistory() }, HISTORY_EVERY_MS)
start()
