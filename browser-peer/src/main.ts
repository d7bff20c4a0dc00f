// The peer page: detect → measure → join → serve, rendered every 500 ms; the chat box makes
// this tab the head of a session. Tests and demos read `globalThis.shardmeshPeer`.
import { peerIdOfKey } from '@shardmesh/mesh'
import { measureThroughput } from '@shardmesh/pipeline'
import { handleBulk, sendBulk } from './bulk.ts'
import type { BulkRun } from './bulk.ts'
import { chooseBackend, capabilitiesOf, detect } from './capabilities.ts'
import type { Detected } from './capabilities.ts'
import { pageConfig } from './config.ts'
import { meteredBackend } from './metered.ts'
import type { ComputeStats } from './metered.ts'
import { tabKey } from './identity.ts'
import { redeemJoinToken } from './join.ts'
import { startBrowserPeer } from './peer.ts'
import type { BrowserPeer } from './peer.ts'
import { snapshot } from './status.ts'
import { startTabHistory } from './tab-history.ts'
import type { TabHistoryHandle } from './tab-history.ts'
import type { PeerState, PeerStatus } from './status.ts'
import { createUi } from './ui.ts'
import { workerBackend } from './worker-backend.ts'
import { installWorkerClock } from './worker-clock.ts'
import type { ClockStats } from './worker-clock.ts'

const RENDER_MS = 500

interface ChatResult { prompt: string, promptTokens: number[], tokens: number[], text: string, finishReason: string }

const ui = createUi(document.getElementById('app')!)
const compute: ComputeStats = { tokens: 0, passes: 0, busyMs: 0, stages: [], recentMs: [] }
const fetchProgress = { parts: 0, partsDone: 0, receivedBytes: 0, totalBytes: 0, cachedBytes: 0 }
let state: PeerState = 'detecting'
let error: string | undefined
let detected: Detected | undefined
let backendName = '—'
/** Where forward passes run: the compute Worker (default) or, with `?worker=0`, the main thread. */
let computeIn: 'worker' | 'main' = 'worker'
let clock: ClockStats = { kind: 'page', fired: 0, pending: 0 }
let bench: number | undefined
let bootstrap: string[] = []
let peer: BrowserPeer | undefined
/** The tab's IndexedDB history and the summaries it publishes (tab-history.ts). */
let history: TabHistoryHandle | undefined
let historyError: string | undefined
const errors: string[] = []

function status (): PeerStatus {
  const s = snapshot({ state, error, peerId: peer?.node.peerId.toString(), bootstrap, backend: backendName, computeIn, clock, detected, adapter: detected?.adapter?.description, benchTokensPerSecond: bench, compute, fetch: fetchProgress, history: history === undefined ? (historyError === undefined ? undefined : { error: historyError }) : history.stats() }, peer)
  if (peer !== undefined && (state === 'joined' || state === 'fetching' || state === 'serving' || state === 'standby')) {
    const range = s.stage?.range
    const fetching = fetchProgress.parts > 0 && fetchProgress.partsDone < fetchProgress.parts
    s.state = range !== undefined && compute.stages.some(r => r[0] === range[0] && r[1] === range[1]) ? 'serving' : fetching ? 'fetching' : s.standbyFor.length > 0 ? 'standby' : 'joined'
    state = s.state
  }
  return s
}

async function chat (prompt: string, maxTokens = 64): Promise<ChatResult> {
  if (peer === undefined) throw new Error('the tab has not joined the mesh')
  const head = await peer.pipeline.ready({ signal: AbortSignal.timeout(60_000) })
  const model = head.served()
  const promptTokens = model.tokenizer.encode(prompt)
  const decoder = model.tokenizer.streamDecoder({ prev: promptTokens[promptTokens.length - 1] })
  ui.chatOutput.textContent = prompt
  const result = await head.generate({
    promptTokens,
    maxTokens,
    sampling: { temperature: 0 },
    onToken: id => { ui.chatOutput.textContent += decoder.push(id) }
  })
  ui.chatOutput.textContent += decoder.flush()
  return { prompt, promptTokens, tokens: result.tokens, text: ui.chatOutput.textContent ?? '', finishReason: result.finishReason }
}

async function leave (): Promise<void> {
  const p = peer
  if (p === undefined || state === 'left') return
  state = 'left'
  history?.stop()
  await p.leave()
}

async function main (): Promise<void> {
  const config = await pageConfig(window.location)
  bootstrap = config.bootstrap
  // before libp2p and the mesh start their timers (browser-peer/README.md "Hidden tabs")
  if (config.clock === 'worker') clock = installWorkerClock()
  detected = await detect()
  const kind = config.backend ?? (detected.adapter === undefined ? 'cpu' : 'webgpu')
  computeIn = config.worker ? 'worker' : 'main'
  const worker = config.worker ? await workerBackend(kind) : undefined
  const inner = worker ?? chooseBackend(kind)
  backendName = inner.name
  state = 'measuring'
  // through the Worker proxy, as the stage server computes and as the coordinator's audits time it
  const throughput = await measureThroughput(inner)
  bench = throughput.decodeTokensPerSecond
  const { backend } = meteredBackend(inner, compute)
  state = 'joining'
  const privateKey = await tabKey()
  // a private mesh: the URL's join token buys this peer id a ticket (and names the mesh)
  const admission = config.join === undefined ? undefined : await redeemJoinToken(location.href, config.join, peerIdOfKey(privateKey))
  peer = await startBrowserPeer({
    bootstrap,
    privateKey,
    ticket: admission?.ticket,
    capabilities: capabilitiesOf(detected, inner, throughput),
    backend,
    allowLocalDial: config.allowLocalDial,
    meshId: admission?.meshId ?? config.meshId,
    onFetchProgress: evt => {
      if (evt.type === 'weights:fetch:start') {
        fetchProgress.parts = evt.detail.parts.length
        fetchProgress.partsDone = 0
        fetchProgress.receivedBytes = 0
        fetchProgress.cachedBytes = 0
        fetchProgress.totalBytes = evt.detail.totalBytes
      } else if (evt.type === 'weights:fetch:bytes') {
        fetchProgress.receivedBytes += evt.detail.bytes
        if (evt.detail.provider === 'local') fetchProgress.cachedBytes += evt.detail.bytes
      } else if (evt.type === 'weights:fetch:part') {
        fetchProgress.partsDone = evt.detail.partsDone
      }
    },
    onError: err => { errors.push(err.message) }
  })
  await handleBulk(peer.node)
  state = 'joined'
  // a tab without IndexedDB still serves: it only keeps no history
  const joined = peer
  history = await startTabHistory(joined, () => ({ detected, backend: backendName, benchTokensPerSecond: bench, compute, stage: status().stage?.range }), err => { errors.push(`history: ${err.message}`) })
    .catch((err: Error) => { historyError = err.message; return undefined })
}

/** This tab's records in its IndexedDB history (oldest first) and what the recorder did. */
async function tabHistory (): Promise<{ stats: ReturnType<TabHistoryHandle['stats']>, records: Awaited<ReturnType<TabHistoryHandle['records']>> }> {
  if (history === undefined) throw new Error(historyError ?? 'the tab keeps no history yet (it has not joined)')
  return { stats: history.stats(), records: await history.records() }
}

ui.onLeave(() => { void leave() })
ui.onChat(prompt => {
  ui.setChatBusy(true)
  chat(prompt).catch(err => { ui.chatOutput.textContent = `error: ${(err as Error).message}` }).finally(() => { ui.setChatBusy(false) })
})
setInterval(() => { ui.render(status()) }, RENDER_MS)

/** This tab's node and its direct (not relayed) connection to `peerId`. */
function direct (peerId: string): { node: BrowserPeer['node'], conn: ReturnType<BrowserPeer['node']['getConnections']>[number] } {
  if (peer === undefined) throw new Error('the tab has not joined the mesh')
  const conn = peer.node.getConnections().find(c => c.remotePeer.toString() === peerId && c.status === 'open' && c.limits == null)
  if (conn === undefined) throw new Error(`no direct connection to ${peerId}`)
  return { node: peer.node, conn }
}

/** libp2p ping round trips to `peerId` in ms (the per-hop network latency; benchmarks read it). */
async function ping (peerId: string, count = 20): Promise<number[]> {
  const { node, conn } = direct(peerId)
  const rtts: number[] = []
  for (let i = 0; i < count; i++) rtts.push(await node.services.ping.ping(conn.remotePeer))
  return rtts
}

/** Bulk throughput to `peerId` over the direct connection: `frames` frames of `frameBytes` back to back (bulk.ts). */
async function bulk (peerId: string, frameBytes: number, frames: number): Promise<BulkRun> {
  return await sendBulk(direct(peerId).conn, frameBytes, frames)
}

;(globalThis as unknown as { shardmeshPeer: unknown }).shardmeshPeer = { status, chat, leave, ping, bulk, history: tabHistory, errors }
main().catch(err => {
  state = 'error'
  error = (err as Error).message
  ui.render(status())
})
