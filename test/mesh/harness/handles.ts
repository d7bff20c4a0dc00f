import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { GatedPeer } from './node-peer.ts'
import type { ChildProcess } from 'node:child_process'
import type { ElectionRecord, GossipFaults, Transaction } from '@shardmesh/mesh'
import type { Command, PeerSnapshot, PeerSpec, Report } from './types.ts'

type CommandBody = Command extends infer C ? C extends Command ? Omit<C, 'id'> : never : never

const CHILD = fileURLToPath(new URL('./child.ts', import.meta.url))

/** One harness peer, whether a child process or an in-process node. */
export interface PeerHandle {
  readonly kind: 'process' | 'inproc'
  readonly id: string
  readonly addrs: string[]
  /** False once killed or stopped. */
  alive: boolean
  /** The newest snapshot (live for in-process peers, ≤ 100 ms old for processes). */
  snapshot: () => PeerSnapshot
  /** Every election record the peer produced (kept after it dies). */
  readonly history: ElectionRecord[]
  /** SIGKILL (process) or a crash without goodbye (in-process). */
  kill: () => Promise<void>
  stop: () => Promise<void>
  block: (peers: string[]) => Promise<void>
  unblock: () => Promise<void>
  setFaults: (faults: GossipFaults | null) => Promise<void>
  propose: (tx: Transaction) => Promise<number>
  /** Recent stderr of a child process (for failure messages). */
  stderr: () => string
}

export async function startInProcess (spec: PeerSpec, bootstrap: string[]): Promise<PeerHandle> {
  const peer = await GatedPeer.create(spec, bootstrap)
  const history: ElectionRecord[] = []
  const collect = (): void => { history.push(...peer.newHistory()) }
  peer.node.services.mesh.addEventListener('coordinator', collect)
  const handle: PeerHandle = {
    kind: 'inproc',
    id: peer.node.peerId.toString(),
    addrs: peer.node.getMultiaddrs().map(String),
    alive: true,
    snapshot: () => peer.snapshot(),
    history,
    kill: async () => { if (handle.alive) { handle.alive = false; collect(); await peer.crash() } },
    stop: async () => { if (handle.alive) { handle.alive = false; collect(); await peer.node.stop() } },
    block: async peers => { await peer.block(peers) },
    unblock: async () => { peer.unblock() },
    setFaults: async faults => { peer.setFaults(faults) },
    propose: async tx => await peer.node.services.mesh.propose(tx, { signal: AbortSignal.timeout(10_000) }),
    stderr: () => ''
  }
  return handle
}

export async function startProcess (spec: PeerSpec, bootstrap: string[], signal: AbortSignal): Promise<PeerHandle> {
  const child: ChildProcess = fork(CHILD, [JSON.stringify({ spec, bootstrap })], { execArgv: [], stdio: ['ignore', 'ignore', 'pipe', 'ipc'] })
  let err = ''
  child.stderr?.on('data', (d: Buffer) => { err = (err + d.toString()).slice(-8000) })
  const history: ElectionRecord[] = []
  const pending = new Map<number, { resolve: (v: unknown) => void, reject: (e: Error) => void }>()
  let nextId = 1
  let latest: PeerSnapshot | undefined
  const ready = new Promise<PeerSnapshot>((resolve, reject) => {
    child.on('message', (r: Report) => {
      if (r.type === 'ready') { latest = r.snapshot; resolve(r.snapshot) } else if (r.type === 'snapshot') latest = r.snapshot
      else if (r.type === 'history') history.push(...r.records)
      else if (r.type === 'reply') {
        const p = pending.get(r.id)
        pending.delete(r.id)
        if (r.ok) p?.resolve(r.value)
        else p?.reject(new Error(r.error))
      }
    })
    child.once('exit', code => { reject(new Error(`harness peer exited (${String(code)}) before it was ready: ${err}`)) })
    signal.addEventListener('abort', () => { child.kill('SIGKILL'); reject(signal.reason) }, { once: true })
  })
  child.once('exit', () => {
    handle.alive = false
    for (const p of pending.values()) p.reject(new Error('harness peer exited'))
    pending.clear()
  })
  const call = async (c: CommandBody): Promise<unknown> => {
    if (!handle.alive) throw new Error('harness peer is not running')
    const id = nextId++
    return await new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject })
      child.send({ ...c, id })
    })
  }
  const exited = new Promise<void>(resolve => { child.once('exit', () => { resolve() }) })
  const first = await ready
  const handle: PeerHandle = {
    kind: 'process',
    id: first.peerId,
    addrs: first.addrs,
    alive: true,
    snapshot: () => latest ?? first,
    history,
    kill: async () => { if (child.exitCode === null && child.signalCode === null) { child.kill('SIGKILL'); await exited } handle.alive = false },
    stop: async () => {
      if (handle.alive) await call({ cmd: 'stop' }).catch(() => {})
      if (child.exitCode === null && child.signalCode === null) { setTimeout(() => child.kill('SIGKILL'), 5000).unref(); await exited }
      handle.alive = false
    },
    block: async peers => { await call({ cmd: 'block', peers }) },
    unblock: async () => { await call({ cmd: 'unblock' }) },
    setFaults: async faults => { await call({ cmd: 'faults', faults }) },
    propose: async tx => await call({ cmd: 'propose', tx }) as number,
    stderr: () => err
  }
  return handle
}
