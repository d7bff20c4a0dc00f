// The tables and cards: peers, the plan's stages, live generation figures, recoveries.
import { byId, el, ms, rows, short, time } from './dom.ts'
import type { MeshBody, Peer, Snapshot } from './types.ts'

const range = (r: [number, number]): string => `[${r[0]}, ${r[1]})`

export function renderPeers (mesh: MeshBody, self: string): void {
  rows(byId<HTMLTableElement>('peers'), mesh.peers.map(p => el('tr', { 'data-peer': p.peerId, 'data-status': p.status, class: p.status },
    el('td', { class: 'mono' }, p.peerId, p.peerId === self ? ' (this node)' : '', p.peerId === mesh.coordinator ? ' ★' : ''),
    el('td', {}, el('span', { class: `badge ${p.status}` }, p.status)),
    el('td', {}, p.role),
    el('td', {}, `${p.runtime.name}${p.runtime.version === undefined ? '' : ` ${p.runtime.version}`} / ${p.backend.kind}${p.backend.adapter?.architecture === undefined ? '' : ` (${p.backend.adapter.architecture})`}`),
    el('td', {}, p.layers.map(range).join(' ') || '–'),
    el('td', {}, p.throughput === undefined ? '–' : p.throughput.decodeTokensPerSecond.toFixed(0)),
    el('td', {}, p.load.toFixed(2)),
    el('td', {}, p.links.map(l => `${l.kind}${l.rttMs === undefined ? '' : ` ${l.rttMs} ms`}`).join(', ') || (p.peerId === self ? '' : 'none')),
    el('td', {}, ms(p.lastSeenMs))
  )))
}

const peerLabel = (peers: Map<string, Peer>, id: string): HTMLElement => {
  const p = peers.get(id)
  return el('span', { class: `peer ${p?.status ?? 'unknown'}`, title: id, 'data-peer': id }, short(id), ` ${p?.status ?? 'unknown'}`)
}

/** The plan, stage by stage: layers, primary (and its link from this node), standbys, the planner's reason. */
export function renderStages (mesh: MeshBody): void {
  byId('plan-strategy').textContent = mesh.plan === null ? 'no plan yet' : `plan v${mesh.plan.version} · ${mesh.plan.strategy}`
  const peers = new Map(mesh.peers.map(p => [p.peerId, p]))
  byId('stages').replaceChildren(...(mesh.plan?.stages ?? []).map((s, i) => {
    const link = peers.get(s.primary)?.links[0]
    return el('li', { 'data-stage': i, 'data-range': `${s.range[0]}-${s.range[1]}`, 'data-primary': s.primary, class: peers.get(s.primary)?.status ?? 'unknown' },
      el('h3', {}, `stage ${i}`),
      el('div', { class: 'range' }, `layers ${range(s.range)}`),
      el('div', {}, 'primary ', peerLabel(peers, s.primary)),
      el('div', {}, link === undefined ? 'link: none from this node' : `link: ${link.kind}${link.rttMs === undefined ? '' : `, ping ${link.rttMs} ms`}`),
      el('div', {}, 'standbys ', ...(s.standbys.length === 0 ? ['none'] : s.standbys.map(id => peerLabel(peers, id)))),
      el('div', { class: 'reason' }, s.reason)
    )
  }))
}

export function renderLive (s: Snapshot): void {
  const live = s.live
  byId('tps').textContent = live === undefined ? '–' : live.tokensPerSecond.toFixed(1)
  byId('tps-window').textContent = live === undefined ? '(this node drives no generations)' : `(tokens out of the pipeline over the last ${live.windowMs / 1000} s)`
  byId('in-flight').textContent = String(live?.inFlight ?? '–')
  byId('finished').textContent = String(live?.finished ?? '–')
  byId('failed').textContent = String(live?.failed ?? '–')
  const g = live?.recent[live.recent.length - 1]
  byId('last-generation').textContent = g === undefined
    ? 'no generation yet'
    : `last: ${g.tokens} tokens at ${time(g.at)} · decode ${g.decodeTokensPerSecond.toFixed(1)} tok/s · ${g.msPerToken === null ? '–' : `${g.msPerToken.toFixed(1)} ms`} per token through every stage · prefill ${ms(g.prefillMs)} for ${g.promptTokens} tokens · ${g.finishReason}${g.recoveries > 0 ? ` · ${g.recoveries} recover${g.recoveries === 1 ? 'y' : 'ies'}` : ''}`
  byId('last-generation').dataset.decodeTps = g === undefined ? '' : String(g.decodeTokensPerSecond)
}

export function renderRecoveries (mesh: MeshBody): void {
  const list = mesh.recoveries
  byId('recovery-count').textContent = list === undefined ? '(this node drives no sessions)' : `${list.length}`
  rows(byId<HTMLTableElement>('recoveries'), [...(list ?? [])].reverse().map(e => el('tr', { 'data-failed': e.failed.join(' '), class: e.ok ? 'ok' : 'failed' },
    el('td', {}, time(e.at)),
    el('td', { class: 'mono', title: e.failed.join(' ') }, e.failed.map(short).join(' ')),
    el('td', {}, e.stages.join(', ')),
    el('td', {}, e.class),
    el('td', {}, `${e.strategy} / ${e.path}`),
    el('td', {}, ms(e.stallMs)),
    el('td', {}, e.ok ? 'resumed' : `failed${e.error === undefined ? '' : `: ${e.error}`}`)
  )))
}

export function renderSummary (s: Snapshot): void {
  const m = s.mesh
  byId('self').textContent = short(s.self)
  byId('self').title = s.self
  byId('coordinator').textContent = m.coordinator === null ? 'none' : `${short(m.coordinator)}${m.coordinator === s.self ? ' (this node)' : ''}`
  byId('coordinator').title = m.coordinator ?? ''
  byId('coordinator').dataset.peer = m.coordinator ?? ''
  byId('term').textContent = String(m.term)
  byId('state-version').textContent = `v${m.stateVersion}`
  byId('plan-version').textContent = m.plan === null ? 'none' : `v${m.plan.version}`
  byId('ft').textContent = m.faultTolerance === undefined ? '–' : `${m.faultTolerance.level} / ${m.faultTolerance.recovery}`
}
