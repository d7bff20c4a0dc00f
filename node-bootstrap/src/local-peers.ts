import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FaultTolerance } from '@shardmesh/pipeline'
import type { BackendKind } from './backend.ts'
import { CliError } from './errors.ts'
import { logger } from './log.ts'
import { faultToleranceArgs } from './pipeline.ts'

const CLI = fileURLToPath(new URL('./cli.ts', import.meta.url))
/** Env var that makes `shardmesh peer` exit when its stdin closes (its parent died). */
export const EXIT_WITH_STDIN = 'SHARDMESH_EXIT_WITH_STDIN'
/** Grace for a child to stop after SIGTERM before SIGKILL. */
const STOP_GRACE_MS = 5000
/** First wait before respawning a dead child; doubled per death in a row without a join between… */
export const RESPAWN_DELAY_MS = 250
/** …up to this. */
export const RESPAWN_DELAY_MAX_MS = 10_000
/** A child that ran this long resets the doubling. */
const RESPAWN_RESET_AFTER_MS = 30_000
/** Deaths in a row before a child joined at all, after which its slot gives up. */
const RESPAWN_GIVE_UP_AFTER = 8

export interface LocalPeerInfo {
  /** Slot index (the child's key file is per slot, so a respawned child keeps the peer id). */
  index: number
  peerId: string
  addrs: string[]
  /** The running child's pid. */
  pid: number
  /** Times this slot's child was respawned. */
  restarts: number
}

export interface LocalPeers {
  /** What each child printed (`shardmesh peer --json`): peer id, addresses (of the first start). */
  peers: Array<{ peerId: string, addrs: string[] }>
  /** Each slot's current child (pid, peer id, restarts); `pid` is of a child still joining when it was just respawned. */
  list: () => LocalPeerInfo[]
  /** Resolves with the slot's child once it is up and has joined (at once if it is). */
  ready: (index: number, options?: { signal?: AbortSignal }) => Promise<LocalPeerInfo>
  /** Stops the children and their respawning. */
  stop: () => Promise<void>
}

export interface LocalPeersInit {
  count: number
  /** The bootstrap's multiaddr (WebSockets), ending in /p2p/<id>. */
  bootstrap: string
  /** Manifest CID the peers serve. */
  model: string
  /** Directory of the children's key files (`peer-<index>.key`): a respawned child keeps its peer id. @default a fresh key per start */
  keyDir?: string
  logLevel?: string
  meshId?: string
  /** Private meshes: each child's admission ticket (`--ticket`, one per child). */
  tickets?: string[]
  /** `--ft-level`/`--recovery` for the peers (they matter where a peer is a head). */
  faultTolerance?: Partial<FaultTolerance>
  /** More `shardmesh peer` flags for every child (e.g. `--min-peers N`). */
  args?: string[]
  /** Each child's `--backend` (one per child). @default cpu for every child */
  backends?: BackendKind[]
  /** Respawn children that die (with backoff). @default true */
  respawn?: boolean
  signal?: AbortSignal
}

interface Joined { peerId: string, addrs: string[] }

function waitForJson (child: ChildProcess, signal?: AbortSignal): Promise<Joined> {
  return new Promise((resolve, reject) => {
    let out = ''
    const onAbort = (): void => { reject(signal?.reason as Error) }
    signal?.addEventListener('abort', onAbort, { once: true })
    child.stdout!.on('data', (d: Buffer) => {
      if (out.includes('\n')) return
      out += d.toString()
      const nl = out.indexOf('\n')
      if (nl < 0) return
      signal?.removeEventListener('abort', onAbort)
      try { resolve(JSON.parse(out.slice(0, nl))) } catch (err) { reject(err as Error) }
    })
    child.once('exit', (code, sig) => {
      signal?.removeEventListener('abort', onAbort)
      reject(new CliError(`local peer ${String(child.pid)} exited (${sig ?? String(code)}) before it joined`))
    })
  })
}

async function stopChild (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>(resolve => { child.once('exit', () => { resolve() }) })
  child.kill('SIGCONT') // a stopped (SIGSTOP) child cannot handle SIGTERM
  child.kill('SIGTERM')
  const timer = setTimeout(() => { child.kill('SIGKILL') }, STOP_GRACE_MS)
  await exited
  clearTimeout(timer)
}

/** One local peer: its current child, respawned with backoff when it dies. */
class Slot {
  child!: ChildProcess
  joined: Promise<Joined>
  info: LocalPeerInfo | undefined
  restarts = 0
  private deathsInRow = 0
  private startedAt = 0
  private timer: ReturnType<typeof setTimeout> | undefined
  private stopped = false
  private readonly waiters: Array<() => void> = []
  readonly index: number
  private readonly args: string[]
  private readonly respawn: boolean

  constructor (index: number, args: string[], respawn: boolean, signal?: AbortSignal) {
    this.index = index
    this.args = args
    this.respawn = respawn
    this.joined = this.launch(signal)
  }

  private launch (signal?: AbortSignal): Promise<Joined> {
    const log = logger('local-peers')
    const child = spawn(process.execPath, this.args, { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, [EXIT_WITH_STDIN]: '1' } })
    this.child = child
    this.startedAt = Date.now()
    const joined = waitForJson(child, signal)
    joined.then(j => {
      this.deathsInRow = 0
      this.info = { index: this.index, peerId: j.peerId, addrs: j.addrs, pid: child.pid!, restarts: this.restarts }
      for (const w of this.waiters.splice(0)) w()
    }, () => {})
    child.once('exit', (code, sig) => {
      if (this.stopped || !this.respawn) return
      if (this.info?.pid === child.pid) this.info = undefined
      if (Date.now() - this.startedAt > RESPAWN_RESET_AFTER_MS) this.deathsInRow = 0
      this.deathsInRow++
      if (this.deathsInRow > RESPAWN_GIVE_UP_AFTER) {
        log.error(`local peer ${this.index} (pid ${String(child.pid)}) died ${RESPAWN_GIVE_UP_AFTER} times in a row; not respawning it again`)
        return
      }
      const delay = Math.min(RESPAWN_DELAY_MAX_MS, RESPAWN_DELAY_MS * 2 ** (this.deathsInRow - 1))
      log.warn(`local peer ${this.index} (pid ${String(child.pid)}) exited (${sig ?? String(code)}); respawning in ${delay} ms`)
      this.timer = setTimeout(() => {
        if (this.stopped) return
        this.restarts++
        this.joined = this.launch()
        this.joined.then(j => { log.info(`local peer ${this.index} back as ${j.peerId} (pid ${String(this.child.pid)}, restart ${this.restarts})`) }, err => { log.warn(`local peer ${this.index} respawn failed: ${(err as Error).message}`) })
      }, delay)
    })
    return joined
  }

  async ready (signal?: AbortSignal): Promise<LocalPeerInfo> {
    for (;;) {
      signal?.throwIfAborted()
      if (this.stopped) throw new CliError(`local peer ${this.index} is stopped`)
      if (this.info !== undefined && this.info.pid === this.child.pid && this.child.exitCode === null && this.child.signalCode === null) return this.info
      await new Promise<void>(resolve => {
        const t = setTimeout(resolve, 200) // also re-check: the child may have died meanwhile
        this.waiters.push(() => { clearTimeout(t); resolve() })
      })
    }
  }

  async stop (): Promise<void> {
    this.stopped = true
    clearTimeout(this.timer)
    for (const w of this.waiters.splice(0)) w()
    await stopChild(this.child)
  }
}

/**
 * `--local-peers N`: N `shardmesh peer` child processes joining through `bootstrap`. They are
 * killed when this process exits, and exit themselves when it dies (their stdin closes). A child
 * that dies is respawned (after 250 ms, doubling to at most 10 s while respawns die before joining) with the key
 * of its slot, so it returns with the same peer id.
 */
export async function spawnLocalPeers (init: LocalPeersInit): Promise<LocalPeers> {
  const slots: Slot[] = []
  const killAll = (): void => { for (const s of slots) if (s.child.exitCode === null) s.child.kill('SIGKILL') }
  process.once('exit', killAll)
  const stop = async (): Promise<void> => {
    await Promise.all(slots.map(async s => { await s.stop() }))
    process.removeListener('exit', killAll)
  }
  try {
    for (let i = 0; i < init.count; i++) {
      const args = [...process.execArgv, CLI, 'peer', '--bootstrap', init.bootstrap, '--model', init.model, '--json']
      if (init.logLevel !== undefined) args.push('--log-level', init.logLevel)
      if (init.meshId !== undefined) args.push('--mesh-id', init.meshId)
      if (init.tickets?.[i] !== undefined) args.push('--ticket', init.tickets[i])
      if (init.keyDir !== undefined) args.push('--key', join(init.keyDir, `peer-${i}.key`))
      args.push('--backend', init.backends?.[i] ?? 'cpu', ...faultToleranceArgs(init.faultTolerance ?? {}), ...(init.args ?? []))
      slots.push(new Slot(i, args, init.respawn ?? true, init.signal))
    }
    const peers = await Promise.all(slots.map(async s => await s.joined))
    return {
      peers: peers.map(p => ({ peerId: p.peerId, addrs: p.addrs })),
      list: () => slots.map(s => s.info ?? { index: s.index, peerId: peers[s.index].peerId, addrs: [], pid: s.child.pid!, restarts: s.restarts }),
      ready: async (index, options = {}) => {
        const slot = slots[index]
        if (slot === undefined) throw new RangeError(`no local peer ${index} (there are ${slots.length})`)
        return await slot.ready(options.signal)
      },
      stop
    }
  } catch (err) {
    await stop()
    throw err
  }
}
