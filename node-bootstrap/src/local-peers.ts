import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { FaultTolerance } from '@shardmesh/pipeline'
import { CliError } from './errors.ts'
import { faultToleranceArgs } from './pipeline.ts'

const CLI = fileURLToPath(new URL('./cli.ts', import.meta.url))
/** Env var that makes `shardmesh peer` exit when its stdin closes (its parent died). */
export const EXIT_WITH_STDIN = 'SHARDMESH_EXIT_WITH_STDIN'
/** Grace for a child to stop after SIGTERM before SIGKILL. */
const STOP_GRACE_MS = 5000

export interface LocalPeers {
  /** What each child printed (`shardmesh peer --json`): peer id, addresses, capabilities. */
  peers: Array<{ peerId: string, addrs: string[] }>
  stop: () => Promise<void>
}

export interface LocalPeersInit {
  count: number
  /** The bootstrap's multiaddr (WebSockets), ending in /p2p/<id>. */
  bootstrap: string
  /** Manifest CID the peers serve. */
  model: string
  logLevel?: string
  meshId?: string
  /** `--ft-level`/`--recovery` for the peers (they matter where a peer is a head). */
  faultTolerance?: Partial<FaultTolerance>
  signal?: AbortSignal
}

function waitForJson (child: ChildProcess, signal?: AbortSignal): Promise<{ peerId: string, addrs: string[] }> {
  return new Promise((resolve, reject) => {
    let out = ''
    const onAbort = (): void => { reject(signal?.reason as Error) }
    signal?.addEventListener('abort', onAbort, { once: true })
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      const nl = out.indexOf('\n')
      if (nl < 0) return
      signal?.removeEventListener('abort', onAbort)
      try { resolve(JSON.parse(out.slice(0, nl))) } catch (err) { reject(err as Error) }
    })
    child.once('exit', code => { reject(new CliError(`local peer ${String(child.pid)} exited (${String(code)}) before it joined`)) })
  })
}

async function stopChild (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>(resolve => { child.once('exit', () => { resolve() }) })
  child.kill('SIGTERM')
  const timer = setTimeout(() => { child.kill('SIGKILL') }, STOP_GRACE_MS)
  await exited
  clearTimeout(timer)
}

/**
 * `--local-peers N`: N `shardmesh peer` child processes joining through `bootstrap`. They are
 * killed when this process exits, and exit themselves when it dies (their stdin closes).
 */
export async function spawnLocalPeers (init: LocalPeersInit): Promise<LocalPeers> {
  const children: ChildProcess[] = []
  const killAll = (): void => { for (const c of children) if (c.exitCode === null) c.kill('SIGKILL') }
  process.once('exit', killAll)
  const stop = async (): Promise<void> => {
    await Promise.all(children.map(stopChild))
    process.removeListener('exit', killAll)
  }
  try {
    for (let i = 0; i < init.count; i++) {
      const args = [...process.execArgv, CLI, 'peer', '--bootstrap', init.bootstrap, '--model', init.model, '--json']
      if (init.logLevel !== undefined) args.push('--log-level', init.logLevel)
      if (init.meshId !== undefined) args.push('--mesh-id', init.meshId)
      args.push(...faultToleranceArgs(init.faultTolerance ?? {}))
      children.push(spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, [EXIT_WITH_STDIN]: '1' } }))
    }
    const peers = await Promise.all(children.map(async c => await waitForJson(c, init.signal)))
    return { peers: peers.map(p => ({ peerId: p.peerId, addrs: p.addrs })), stop }
  } catch (err) {
    await stop()
    throw err
  }
}
