/**
 * Scale run: N mesh peers (default 50) on loopback TCP, hosted as in-process nodes by a few
 * worker processes (default 4, so both cores of a small machine work). Prints the time to
 * the first coordinator and to agreement of all peers, gossip bytes per peer per second in
 * steady state, and the election time after the coordinator crashes (3 times).
 *
 *   pnpm bench:scale                      # 50 peers, 4 workers
 *   pnpm bench:scale -- --peers 80 --workers 4
 */
import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import type { ChildProcess } from 'node:child_process'

const { values } = parseArgs({ options: { peers: { type: 'string', default: '50' }, workers: { type: 'string', default: '4' }, window: { type: 'string', default: '10000' }, kills: { type: 'string', default: '3' } } })
const N = Number(values.peers)
const W = Math.min(Number(values.workers), N)
const WINDOW_MS = Number(values.window)
const KILLS = Number(values.kills)
const WORKER = fileURLToPath(new URL('./mesh-scale-worker.ts', import.meta.url))

interface PeerReport { peerId: string, coordinator: string | null, term: number, role: string, alive: number, config: number, connections: number, gossipPeers: number, meshPeers: number, traffic: { sentBytes: number, recvBytes: number }, rejections: Record<string, number>, history: Array<{ term: number, coordinator: string, how: string, at: number }> }
interface Worker { closes?: Record<string, number>, child: ChildProcess, peers: Map<string, PeerReport>, cpuMs: number, started: Promise<Array<{ peerId: string, addr: string }>> }

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }
const history = new Map<string, Array<{ term: number, coordinator: string, at: number }>>()
const crashed = new Set<string>()

function spawnWorker (): Worker {
  const child = fork(WORKER, [], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const w: Worker = { child, peers: new Map(), cpuMs: 0, started: Promise.resolve([]) }
  let onStarted: (p: Array<{ peerId: string, addr: string }>) => void = () => {}
  w.started = new Promise(resolve => { onStarted = resolve })
  child.on('message', (m: any) => {
    if (m.type === 'started') onStarted(m.peers)
    if (m.type !== 'report') return
    w.cpuMs = m.cpuMs
    w.closes = m.closes
    w.peers = new Map((m.peers as PeerReport[]).map(p => [p.peerId, p]))
    for (const p of m.peers as PeerReport[]) history.set(p.peerId, [...(history.get(p.peerId) ?? []), ...p.history])
  })
  return w
}

const workers = Array.from({ length: W }, spawnWorker)
const live = (): PeerReport[] => workers.flatMap(w => [...w.peers.values()]).filter(p => !crashed.has(p.peerId))

let lastCpu: { ms: number, at: number } | undefined
function progress (): string {
  const peers = live()
  const views = new Set(peers.map(p => `${p.coordinator?.slice(-6) ?? '-'}@${p.term}`))
  const alive = peers.map(p => p.alive)
  const config = peers.map(p => p.config)
  const roles: Record<string, number> = {}
  for (const p of peers) roles[p.role] = (roles[p.role] ?? 0) + 1
  const cpu = workers.reduce((a, w) => a + w.cpuMs, 0)
  const cores = lastCpu === undefined ? 0 : (cpu - lastCpu.ms) / (Date.now() - lastCpu.at)
  lastCpu = { ms: cpu, at: Date.now() }
  const terms = peers.map(p => p.term)
  const mm = (xs: number[]): string => `${Math.min(...xs)}–${Math.max(...xs)}`
  const closes: Record<string, number> = {}
  for (const w of workers) for (const [k, v] of Object.entries(w.closes ?? {})) closes[k] = (closes[k] ?? 0) + v
  return `closes ${JSON.stringify(closes)} conns ${mm(peers.map(p => p.connections))} gossip ${mm(peers.map(p => p.gossipPeers))} mesh ${mm(peers.map(p => p.meshPeers))}, ${cores.toFixed(2)} cores, roles ${JSON.stringify(roles)}, terms ${Math.min(...terms)}–${Math.max(...terms)}, ${views.size} coordinator views [${[...views].slice(0, 3).join(' ')}], alive seen ${Math.min(...alive)}–${Math.max(...alive)}, config ${Math.min(...config)}–${Math.max(...config)}`
}

async function waitFor<T> (what: string, fn: () => T | undefined | false, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let next = Date.now() + 5000
  for (;;) {
    const v = fn()
    if (v !== undefined && v !== false) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${progress()}`)
    if (Date.now() > next) { process.stderr.write(`  … waiting for ${what}: ${progress()}\n`); next += 5000 }
    await sleep(50)
  }
}

function agreed (): { peerId: string, term: number } | undefined {
  const peers = live()
  if (peers.length < N - crashed.size) return undefined
  const c = peers[0].coordinator
  if (c === null || !peers.every(p => p.coordinator === c && p.term === peers[0].term)) return undefined
  return peers.find(p => p.peerId === c)?.role === 'coordinator' ? { peerId: c, term: peers[0].term } : undefined
}

/** First and last time a live peer recorded `term`'s coordinator (wall clock of the workers). */
function recorded (term: number): { first: number, last: number } | undefined {
  const times = live().map(p => history.get(p.peerId)?.find(r => r.term === term)?.at)
  if (times.some(t => t === undefined)) return undefined
  return { first: Math.min(...times as number[]), last: Math.max(...times as number[]) }
}

process.on('exit', () => { for (const w of workers) w.child.kill('SIGKILL') })
// the connection monitor is off: dozens of in-process peers share each event loop, and a ping
// (every second on every connection by default) that a busy loop answers late aborts a healthy
// connection; a crashed peer's TCP connections close at once anyway
const init = { connectionMonitor: { enabled: false } }
const t0 = Date.now()
workers[0].child.send({ cmd: 'start', count: 1, bootstrap: [], init, waveSize: 1, waveGapMs: 0 })
const [seed] = await workers[0].started
const shares = workers.map((_, i) => Math.floor((N - 1) / W) + (i < (N - 1) % W ? 1 : 0))
workers.forEach((w, i) => {
  let onStarted: (p: Array<{ peerId: string, addr: string }>) => void = () => {}
  w.started = new Promise(resolve => { onStarted = resolve })
  w.child.on('message', (m: any) => { if (m.type === 'started') onStarted(m.peers) })
  w.child.send({ cmd: 'start', count: shares[i], bootstrap: [seed.addr], init, waveSize: 3, waveGapMs: 300 })
})
await Promise.all(workers.map(async w => await w.started))
const startedAt = Date.now()
const first = await waitFor('all peers agreeing on a coordinator', agreed)
const firstTimes = await waitFor('the first term recorded everywhere', () => recorded(first.term))
const configAt = await waitFor(`a configuration of all ${N}`, () => live().every(p => p.config === N) && Date.now())

await sleep(3000)
const before = new Map(live().map(p => [p.peerId, p.traffic]))
const cpuBefore = workers.reduce((a, w) => a + w.cpuMs, 0)
await sleep(WINDOW_MS)
const cpuAfter = workers.reduce((a, w) => a + w.cpuMs, 0)
const rates = live().map(p => ({ sent: (p.traffic.sentBytes - before.get(p.peerId)!.sentBytes) / (WINDOW_MS / 1000), recv: (p.traffic.recvBytes - before.get(p.peerId)!.recvBytes) / (WINDOW_MS / 1000) }))
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length
const steadyAgreed = agreed()

const failovers: Array<{ term: number, electedMs: number, allAgreedMs: number }> = []
let current = first
for (let k = 0; k < KILLS; k++) {
  const host = workers.find(w => w.peers.has(current.peerId))!
  const killedAt = Date.now()
  crashed.add(current.peerId)
  host.child.send({ cmd: 'crash', peerId: current.peerId })
  const next = await waitFor('a new coordinator everywhere', () => { const a = agreed(); return a !== undefined && a.peerId !== current.peerId && a })
  const rec = await waitFor('the new term recorded everywhere', () => recorded(next.term))
  failovers.push({ term: next.term, electedMs: rec.first - killedAt, allAgreedMs: rec.last - killedAt })
  current = next
  await sleep(4000)
}

const byTerm = new Map<number, Set<string>>()
for (const records of history.values()) for (const r of records) byTerm.set(r.term, (byTerm.get(r.term) ?? new Set()).add(r.coordinator))
const violations = [...byTerm.values()].filter(s => s.size > 1).length
const rejections: Record<string, number> = {}
for (const p of live()) for (const [k, v] of Object.entries(p.rejections)) rejections[k] = (rejections[k] ?? 0) + v

const result = {
  peers: N,
  workers: W,
  startAllMs: startedAt - t0,
  firstCoordinatorMs: firstTimes.first - t0,
  allAgreedMs: firstTimes.last - t0,
  configOfAllMs: configAt - t0,
  steadyCoordinatorStable: steadyAgreed?.peerId === first.peerId && steadyAgreed.term === first.term,
  sentBytesPerPeerPerSecond: Math.round(mean(rates.map(r => r.sent))),
  recvBytesPerPeerPerSecond: Math.round(mean(rates.map(r => r.recv))),
  maxSentBytesPerPeerPerSecond: Math.round(Math.max(...rates.map(r => r.sent))),
  connectionsPerPeer: Math.round(mean(live().map(p => p.connections)) * 10) / 10,
  cpuCoresUsed: Math.round((cpuAfter - cpuBefore) / WINDOW_MS * 100) / 100,
  failovers,
  termsWithTwoCoordinators: violations,
  rejections
}
for (const w of workers) w.child.send({ cmd: 'stop' })
await Promise.all(workers.map(async w => await new Promise(resolve => { w.child.once('exit', resolve); setTimeout(() => { w.child.kill('SIGKILL') }, 10_000).unref() })))

const kib = (b: number): string => (b / 1024).toFixed(1)
console.log(`mesh scale run: ${N} peers on loopback TCP, in-process nodes in ${W} worker processes (Node ${process.versions.node})`)
console.log(`  peers started (waves of 3 per worker, 300 ms apart)   ${result.startAllMs} ms`)
console.log(`  first coordinator elected ${result.firstCoordinatorMs} ms, all ${N} agree ${result.allAgreedMs} ms, voting configuration of all ${N} ${result.configOfAllMs} ms (from the first peer's start)`)
console.log(`  steady state over ${WINDOW_MS / 1000} s: gossip per peer sent ${kib(result.sentBytesPerPeerPerSecond)} KiB/s, received ${kib(result.recvBytesPerPeerPerSecond)} KiB/s (max sent ${kib(result.maxSentBytesPerPeerPerSecond)} KiB/s); ${result.connectionsPerPeer} connections per peer; ${result.cpuCoresUsed} CPU cores for all peers; coordinator unchanged: ${String(result.steadyCoordinatorStable)}`)
for (const f of failovers) console.log(`  coordinator crash → term ${f.term}: new coordinator elected after ${f.electedMs} ms, all peers follow it after ${f.allAgreedMs} ms`)
console.log(`  terms with two coordinators: ${violations} (over ${byTerm.size} terms)`)
console.log(JSON.stringify(result))
process.exitCode = violations === 0 ? 0 : 1
