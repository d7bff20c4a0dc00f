import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { join } from 'node:path'
import type { RouteHop } from '@shardmesh/protocol'
import { repoRoot } from '../fixtures.ts'

/** Stage peers as separate Node processes (peer-process.ts), one per range (layers, or a span with units). */
export interface PeerProcesses { route: RouteHop[], children: ChildProcess[], stop: () => Promise<void> }

export async function spawnPeers (model: string, ranges: Array<[number, number] | { layers: [number, number], units?: [number, number] }>, env: Array<Record<string, string> | undefined> = []): Promise<PeerProcesses> {
  const children: ChildProcess[] = []
  const stop = async (): Promise<void> => {
    await Promise.all(children.map(async c => {
      if (c.exitCode !== null || c.signalCode !== null) return
      const exited = new Promise(resolve => c.once('exit', resolve))
      c.stdin?.end()
      const t = setTimeout(() => c.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(t)
    }))
  }
  try {
    const route = await Promise.all(ranges.map(async (r, i) => {
      const { layers: [l0, l1], units } = Array.isArray(r) ? { layers: r, units: undefined } : r
      const child = spawn(process.execPath, [join(repoRoot, 'test/pipeline/peer-process.ts'), model, String(l0), String(l1), ...(units === undefined ? [] : [units.join(',')])], { cwd: repoRoot, stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, ...env[i] } })
      children.push(child)
      const line = await new Promise<string>((resolve, reject) => {
        const rl = createInterface({ input: child.stdout! })
        rl.once('line', l => { rl.close(); resolve(l) })
        child.once('exit', code => { reject(new Error(`peer for [${l0}, ${l1}) exited with ${code} before printing its address`)) })
      })
      return JSON.parse(line) as RouteHop
    }))
    return { route, children, stop }
  } catch (err) {
    await stop()
    throw err
  }
}
