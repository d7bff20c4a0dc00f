import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { storiesDir } from '../../test/fixtures.ts'
import { childrenOf, samples, waitFor } from './helpers.ts'
import { cli } from './run-cli.ts'

const gguf = join(storiesDir(), 'stories260K.gguf')
const children: ChildProcess[] = []
const temps: string[] = []

/** Spawn the CLI in its own process group (afterEach kills it and its local peers); `first` is its first stdout line as JSON. */
function run (args: string[]): { child: ChildProcess, first: Promise<Record<string, any>>, stderr: () => string } {
  const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  children.push(child)
  let stdout = ''
  let stderr = ''
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString() })
  const first = new Promise<Record<string, any>>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString()
      if (stdout.includes('\n')) resolve(JSON.parse(stdout.slice(0, stdout.indexOf('\n'))))
    })
    child.once('exit', code => { reject(new Error(`shardmesh ${args[0]} exited ${String(code)}: ${stderr}`)) })
  })
  first.catch(() => {})
  return { child, first, stderr: () => stderr }
}

async function temp (): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'shardmesh-ft-'))
  temps.push(d)
  return d
}

afterEach(async () => {
  for (const c of children) {
    try { process.kill(-c.pid!, 'SIGKILL') } catch {}
  }
  children.length = 0
  for (const d of temps) await rm(d, { recursive: true, force: true })
  temps.length = 0
})

describe('start --local-peers with --ft-level/--recovery: /api/mesh and /metrics', () => {
  it('shows the fault tolerance and recoveries of the head, Prometheus metrics of the live mesh, and passes the flags to the local peers', async () => {
    const meshId = `ft-${process.pid}-a`
    const start = run(['start', '--model', gguf, '--local-peers', '2', '--port', '0', '--json', '--store', await temp(), '--mesh-id', meshId, '--ft-level', 'high', '--recovery', 'parallel'])
    const info = await start.first
    const http = info.http as string
    // (at level high the planner may keep a peer as a warm standby instead of giving it a stage)
    const mesh = await waitFor('three alive members and a plan', async () => {
      const m = await (await fetch(`${http}/api/mesh`)).json() as Record<string, any>
      return m.peers.filter((p: { status: string }) => p.status === 'alive').length === 3 && m.plan !== null ? m : undefined
    })
    expect(mesh.faultTolerance).toEqual({ level: 'high', recovery: 'parallel' })
    expect(Array.isArray(mesh.recoveries)).toBe(true)
    for (const e of mesh.recoveries) expect(Object.keys(e)).toEqual(expect.arrayContaining(['at', 'session', 'failed', 'class', 'strategy', 'path', 'stallMs', 'ok']))

    const res = await fetch(`${http}/metrics`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
    const text = await res.text()
    expect(text).toContain('# TYPE shardmesh_recoveries_total counter')
    expect(text).toContain('# TYPE shardmesh_recovery_stall_ms histogram')
    expect(text).toContain('# TYPE shardmesh_recovery_detection_ms histogram')
    const s = samples(text)
    expect(s.get('shardmesh_members{status="alive"}')).toBe(3)
    expect(s.get('shardmesh_plan_version')).toBe(mesh.plan.version)
    expect(s.get('shardmesh_plan_stages')).toBe(mesh.plan.stages.length)
    expect(s.get('shardmesh_sessions_in_flight')).toBe(0)
    expect(s.get('shardmesh_fault_tolerance_info{level="high",recovery="parallel"}')).toBe(1)
    expect(s.get('shardmesh_coordinator_known')).toBe(1)
    expect(s.get('shardmesh_process_resident_memory_bytes')).toBeGreaterThan(0)
    // one count per event in /api/mesh's list
    const counted = [...s].filter(([k]) => k.startsWith('shardmesh_recoveries_total{')).reduce((n, [, v]) => n + v, 0)
    expect(counted).toBe(mesh.recoveries.length)
    expect((await fetch(`${http}/metrics`, { method: 'POST' })).status).toBe(405)

    // the local peers run with the same level and strategy
    const peers = childrenOf(start.child.pid!)
    expect(peers).toHaveLength(2)
    for (const p of peers) expect(p.args).toMatch(/ peer .*--ft-level high --recovery parallel/)
  })

  it('a bootstrap without a model serves /metrics of the mesh alone and no recoveries', async () => {
    const start = run(['start', '--port', '0', '--json', '--mesh-id', `ft-${process.pid}-b`])
    const http = (await start.first).http as string
    const m = await (await fetch(`${http}/api/mesh`)).json() as Record<string, any>
    expect(m).not.toHaveProperty('recoveries')
    const s = samples(await (await fetch(`${http}/metrics`)).text())
    expect(s.get('shardmesh_members{status="alive"}')).toBe(1)
    expect(s.get('shardmesh_plan_version')).toBe(0)
    expect([...s.keys()].some(k => k.startsWith('shardmesh_recover') || k.startsWith('shardmesh_sessions_in_flight'))).toBe(false)
  })

  it('respawns a SIGKILLed local peer with its key: the same peer id is alive again in /api/mesh', async () => {
    const store = await temp()
    const start = run(['start', '--model', gguf, '--local-peers', '2', '--port', '0', '--json', '--store', store, '--mesh-id', `ft-${process.pid}-c`])
    const info = await start.first
    const http = info.http as string
    const mesh = async (): Promise<Record<string, any>> => await (await fetch(`${http}/api/mesh`)).json() as Record<string, any>
    const statusOf = (m: Record<string, any>, id: string): string | undefined => m.peers.find((p: { peerId: string }) => p.peerId === id)?.status
    await waitFor('both local peers alive', async () => { const m = await mesh(); return (info.peers as string[]).every(id => statusOf(m, id) === 'alive') ? true : undefined })
    // (beside each key: that peer's history database, <key>.duckdb)
    expect((await readdir(join(store, 'local-peers'))).filter(f => f.endsWith('.key')).sort()).toEqual(['peer-0.key', 'peer-1.key'])

    const before = childrenOf(start.child.pid!)
    expect(before).toHaveLength(2)
    const victim = before[0]
    const slot = Number(/peer-(\d)\.key/.exec(victim.args)![1]) // `peers` are in slot order
    const victimId = info.peers[slot] as string
    process.kill(victim.pid, 'SIGKILL')
    // the mesh sees it go, then come back under the same peer id from a new process
    await waitFor('the killed peer marked not alive', async () => statusOf(await mesh(), victimId) !== 'alive' ? true : undefined)
    const after = await waitFor('a new child in its place', async () => {
      const now = childrenOf(start.child.pid!)
      return now.length === 2 && !now.some(c => c.pid === victim.pid) ? now : undefined
    })
    const respawned = after.find(c => !before.some(b => b.pid === c.pid))!
    expect(respawned.args).toContain(`peer-${slot}.key`)
    await waitFor('the same peer id alive again', async () => statusOf(await mesh(), victimId) === 'alive' ? true : undefined)
    const m = await mesh()
    expect(m.peers.filter((p: { status: string }) => p.status === 'alive')).toHaveLength(3)
    expect(m.peers.map((p: { peerId: string }) => p.peerId).sort()).toEqual([info.peerId, ...info.peers].sort())
    expect(start.stderr()).toMatch(/local peer \d \(pid \d+\) exited \(SIGKILL\); respawning in \d+ ms/)
  })
})
