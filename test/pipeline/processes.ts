import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { join } from 'node:path'
import type { RouteHop } from '@shardmesh/protocol'
import { repoRoot } from '../fixtures.ts'

/** Stage peers as separate Node processes (peer-process.ts), one per range (layers, or a span with units). */
export interface PeerProcesses { route: RouteHop[], children: ChildProcess[], stop: () => Promise<void> }

/** End `child`: stdin closed (the test peers stop on it), SIGKILL after 5 s. */
export async function stopChild (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise(resolve => child.once('exit', resolve))
  child.stdin?.end()
  const t = setTimeout(() => child.kill('SIGKILL'), 5000)
  await exited
  clearTimeout(t)
}

/**
 * A Node process running the test script `script` (under the repository) with `args`, once it
 * printed its first line (JSON: what it serves and where). `children` gets it at once, so a
 * caller can stop it even when it fails to start.
 */
export async function spawnReady<T> (script: string, args: string[], children: ChildProcess[], env: Record<string, string> = {}): Promise<{ info: T, child: ChildProcess }> {
  const child = spawn(process.execPath, [join(repoRoot, script), ...args], { cwd: repoRoot, stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, ...env } })
  children.push(child)
  const line = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! })
    rl.once('line', l => { rl.close(); resolve(l) })
    child.once('exit', code => { reject(new Error(`${script} ${args.join(' ')} exited with ${code} before printing its address`)) })
  })
  return { info: JSON.parse(line) as T, child }
}

export async function spawnPeers (model: string, ranges: Array<[number, number] | { layers: [number, number], units?: [number, number] }>, env: Array<Record<string, string> | undefined> = []): Promise<PeerProcesses> {
  const children: ChildProcess[] = []
  const stop = async (): Promise<void> => { await Promise.all(children.map(stopChild)) }
  try {
    const route = await Promise.all(ranges.map(async (r, i) => {
      const { layers: [l0, l1], units } = Array.isArray(r) ? { layers: r, units: undefined } : r
      return (await spawnReady<RouteHop>('test/pipeline/peer-process.ts', [model, String(l0), String(l1), ...(units === undefined ? [] : [units.join(',')])], children, env[i])).info
    }))
    return { route, children, stop }
  } catch (err) {
    await stop()
    throw err
  }
}
