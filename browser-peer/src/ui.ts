// The page: status at a glance (connection, peer id, coordinator and term, stage, adapter,
// tokens, throughput, fetch progress, recoveries), a Leave button and a chat box.
import type { PeerStatus } from './status.ts'

export interface PageUi {
  render: (s: PeerStatus) => void
  /** Called with the prompt when the chat form is sent. */
  onChat: (fn: (prompt: string) => void) => void
  onLeave: (fn: () => void) => void
  chatOutput: HTMLElement
  setChatBusy: (busy: boolean) => void
}

const short = (id: string | null | undefined): string => id == null ? '—' : id.length > 16 ? `${id.slice(0, 8)}…${id.slice(-6)}` : id
const mib = (n: number): string => `${(n / 1024 / 1024).toFixed(2)} MiB`

function el<K extends keyof HTMLElementTagNameMap> (tag: K, attrs: Record<string, string> = {}, text = ''): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v)
  if (text !== '') e.textContent = text
  return e
}

export function createUi (root: HTMLElement): PageUi {
  root.innerHTML = ''
  const header = el('header')
  header.append(el('h1', {}, 'shardmesh peer'), el('span', { id: 'state', class: 'badge' }, 'starting'))
  const grid = el('dl', { id: 'status' })
  const rows: Record<string, HTMLElement> = {}
  const labels: Array<[string, string]> = [
    ['peer', 'Peer id'], ['coordinator', 'Coordinator'], ['term', 'Term'], ['mesh', 'Mesh'],
    ['stage', 'Stage'], ['adapter', 'Adapter'], ['backend', 'Backend'], ['tokens', 'Tokens processed'],
    ['throughput', 'Throughput'], ['fetch', 'Weights'], ['history', 'History'], ['recoveries', 'Recoveries']
  ]
  for (const [key, label] of labels) {
    grid.append(el('dt', {}, label))
    rows[key] = el('dd', { id: `s-${key}` }, '—')
    grid.append(rows[key])
  }
  const bar = el('progress', { id: 'fetch-bar', max: '1', value: '0' })
  const fetchText = el('span', {}, '—')
  rows.fetch.textContent = ''
  rows.fetch.append(bar, fetchText)
  const error = el('p', { id: 'error', class: 'error', hidden: '' })
  const leave = el('button', { id: 'leave', type: 'button' }, 'Leave')
  const chat = el('section', { id: 'chat' })
  const form = el('form', { id: 'chat-form' })
  const input = el('input', { id: 'prompt', type: 'text', placeholder: 'Once upon a time', autocomplete: 'off' })
  const send = el('button', { id: 'send', type: 'submit' }, 'Generate')
  form.append(input, send)
  const output = el('pre', { id: 'chat-output' })
  chat.append(el('h2', {}, 'Chat (this tab is the head)'), form, output)
  root.append(header, error, grid, leave, chat)

  let chatFn: ((p: string) => void) | undefined
  form.addEventListener('submit', e => {
    e.preventDefault()
    chatFn?.(input.value === '' ? input.placeholder : input.value)
  })
  let leaveFn: (() => void) | undefined
  leave.addEventListener('click', () => { leaveFn?.() })

  return {
    chatOutput: output,
    onChat: fn => { chatFn = fn },
    onLeave: fn => { leaveFn = fn },
    setChatBusy: busy => { send.disabled = busy; input.disabled = busy },
    render: s => {
      const badge = header.querySelector('#state')!
      badge.textContent = s.state
      badge.className = `badge ${s.state}`
      error.hidden = s.error === undefined
      error.textContent = s.error ?? ''
      rows.peer.textContent = s.peerId ?? '—'
      rows.peer.title = s.peerId ?? ''
      rows.coordinator.textContent = `${short(s.coordinator)}${s.coordinator !== null && s.coordinator === s.peerId ? ' (this tab)' : ''}`
      rows.term.textContent = String(s.term)
      rows.mesh.textContent = `${s.members} alive · ${s.connections} connected (${s.webrtc} direct WebRTC) · ${s.role}`
      rows.stage.textContent = s.stage !== undefined
        ? `stage ${s.stage.index + 1} of ${s.stage.of}: layers [${s.stage.range[0]}, ${s.stage.range[1]}) · plan v${s.planVersion ?? '?'}`
        : s.standbyFor.length > 0 ? `standby for stage ${s.standbyFor.map(k => k + 1).join(', ')}` : s.planVersion === undefined ? 'no plan yet' : `not in plan v${s.planVersion}`
      const a = s.detected?.adapter
      rows.adapter.textContent = a === undefined
        ? `none (${s.detected?.noAdapter ?? 'detecting'})`
        : `${a.description || a.architecture || a.vendor}${a.fallback ? ' (software)' : ''} · f16 ${a.shaderF16 ? 'yes' : 'no'} · subgroups ${a.subgroups ? 'yes' : 'no'} · max binding ${mib(a.limits.maxStorageBufferBindingSize)}`
      rows.backend.textContent = `${s.backend} in the ${s.computeIn === 'worker' ? 'compute Worker' : 'main thread'} · memory budget ${mib(s.detected?.memoryBytes ?? 0)}`
      rows.tokens.textContent = `${s.compute.tokens} in ${s.compute.passes} passes`
      rows.throughput.textContent = `join benchmark ${s.benchTokensPerSecond ?? '—'} tok/s · serving ${s.servingTokensPerSecond ?? '—'} tok/s of compute`
      const f = s.fetch
      bar.value = f.totalBytes > 0 ? f.receivedBytes / f.totalBytes : 0
      fetchText.textContent = f.totalBytes > 0 ? `${mib(f.receivedBytes)} of ${mib(f.totalBytes)} (${f.partsDone}/${f.parts} parts${f.cachedBytes > 0 ? `, ${mib(f.cachedBytes)} from the IndexedDB cache` : ''})` : '—'
      const h = s.history
      rows.history.textContent = h === undefined
        ? '—'
        : 'error' in h ? `not kept: ${h.error}` : `${h.records} samples into IndexedDB · ${h.published} summaries published${h.lastBytes === null ? '' : ` (last ${h.lastBytes} B to ${h.lastRecipients} peer${h.lastRecipients === 1 ? '' : 's'})`}`
      rows.recoveries.textContent = s.recoveries.length === 0 ? 'none' : s.recoveries.slice(-3).map(r => JSON.stringify(r)).join('\n')
      leave.disabled = s.state === 'left'
    }
  }
}
