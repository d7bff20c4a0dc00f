import { spawn } from 'node:child_process'
import { afterEach, describe, expect, it } from 'vitest'
import { cli, shardmesh } from './run-cli.ts'
import type { ChildProcess } from 'node:child_process'


interface Running { child: ChildProcess, first: Promise<Record<string, any>>, stderr: () => string, exited: Promise<number | null> }

/** Start a long-running command; `first` resolves with its first stdout line as JSON. */
function run (args: string[]): Running {
  const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let err = ''
  child.stderr.on('data', (d: Buffer) => { err += d.toString() })
  const exited = new Promise<number | null>(res => { child.once('exit', code => { res(code) }) })
  const first = new Promise<Record<string, any>>((res, rej) => {
    let out = ''
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      const nl = out.indexOf('\n')
      if (nl >= 0) res(JSON.parse(out.slice(0, nl)))
    })
    child.once('exit', code => { rej(new Error(`exited ${String(code)} before printing: ${err}`)) })
  })
  return { child, first, stderr: () => err, exited }
}

async function waitFor<T> (what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await fn().catch(() => undefined)
    if (v !== undefined) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(r => setTimeout(r, 100))
  }
}

/** `[term, peer]` of every "this peer: coordinator" log line. */
function wins (stderr: string): Array<[number, string]> {
  return [...stderr.matchAll(/term (\d+): coordinator (\S+) \(this peer: coordinator\)/g)].map(m => [Number(m[1]), m[2]])
}

describe('shardmesh start / peer', () => {
  const procs: Running[] = []
  afterEach(async () => {
    for (const p of procs) p.child.kill('SIGKILL')
    await Promise.all(procs.map(async p => await p.exited))
    procs.length = 0
  })

  it('a bootstrap and two Node peers form a mesh with one coordinator, served on GET /api/mesh', async () => {
    const boot = run(['start', '--port', '0', '--json'])
    procs.push(boot)
    const info = await boot.first
    expect(info.peerId).toMatch(/^12D3KooW/)
    expect(info.http).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    const ws = (info.addrs as string[]).find(a => a.includes('/ws/'))
    expect(ws).toBeDefined()
    expect((info.addrs as string[]).some(a => /\/tcp\/\d+\/p2p\//.test(a))).toBe(true)

    // alone, the bootstrap elects itself (any peer can win; it has no special authority)
    const alone = await waitFor('the lone bootstrap coordinating', async () => {
      const body = await (await fetch(`${info.http as string}/api/mesh`)).json() as Record<string, any>
      return body.coordinator === info.peerId ? body : undefined
    })
    const peers = [run(['peer', '--bootstrap', ws!, '--json']), run(['peer', '--bootstrap', ws!, '--json'])]
    procs.push(...peers)
    const ids = [info.peerId, ...await Promise.all(peers.map(async p => (await p.first).peerId as string))]
    for (const p of peers) expect((await p.first).capabilities.throughput.decodeTokensPerSecond).toBeGreaterThan(0)

    const mesh = await waitFor('three alive peers and a coordinator', async () => {
      const body = await (await fetch(`${info.http as string}/api/mesh`)).json() as Record<string, any>
      const alive = (body.peers as any[]).filter(p => p.status === 'alive')
      return alive.length === 3 && body.coordinator !== null ? body : undefined
    })
    expect(Object.keys(mesh).sort()).toEqual(['coordinator', 'distrusted', 'peers', 'plan', 'stateVersion', 'term'])
    expect(mesh.distrusted).toEqual([]) // nobody failed to serve what it claims
    // the newcomers followed the coordinator they found instead of electing their own
    expect(mesh.coordinator).toBe(info.peerId)
    expect(mesh.term).toBe(alone.term)
    expect(mesh.term).toBeGreaterThanOrEqual(1)
    expect(mesh.stateVersion).toBeGreaterThanOrEqual(1)
    expect((mesh.peers as any[]).map(p => p.peerId).sort()).toEqual([...ids].sort())
    for (const p of mesh.peers as any[]) {
      expect(Object.keys(p).sort()).toEqual(['backend', 'lastSeenMs', 'layers', 'links', 'load', 'peerId', 'role', 'runtime', 'status', 'throughput'])
      // the bootstrap's own connections to each peer (TCP or WebSocket, whichever side dialled), none to itself
      const kinds = p.links.map((l: { kind: string }) => l.kind)
      if (p.peerId === info.peerId) expect(kinds).toEqual([])
      else for (const k of kinds) expect(['tcp', 'websocket']).toContain(k)
      expect(p.runtime.name).toBe('node')
      expect(p.backend.kind).toBe('cpu')
      expect(p.lastSeenMs).toBeGreaterThanOrEqual(0)
    }
    expect((mesh.peers as any[]).find(p => p.peerId === info.peerId).role).toBe('bootstrap')

    const missing = await fetch(`${info.http as string}/nope`)
    expect(missing.status).toBe(404)
    expect(await missing.json()).toMatchObject({ error: { code: 'not_found' } })
    expect((await fetch(`${info.http as string}/api/mesh`, { method: 'POST' })).status).toBe(405)

    // clean shutdown on SIGTERM, and never two coordinators in one term
    for (const p of [boot, ...peers]) p.child.kill('SIGTERM')
    expect(await Promise.all([boot, ...peers].map(async p => await p.exited))).toEqual([0, 0, 0])
    const byTerm = new Map<number, Set<string>>()
    for (const [term, peer] of [boot, ...peers].flatMap(p => wins(p.stderr()))) byTerm.set(term, (byTerm.get(term) ?? new Set()).add(peer))
    expect(byTerm.size).toBeGreaterThanOrEqual(1)
    for (const s of byTerm.values()) expect(s.size).toBe(1)
  })

  it('explains its options and refuses bad ones', async () => {
    const help = await shardmesh(['start', '--help'])
    expect(help.code).toBe(0)
    expect(help.stdout).toContain('--port')
    expect(help.stdout).toContain('--listen')
    expect((await shardmesh(['peer', '--help'])).stdout).toContain('--bootstrap')
    const noBoot = await shardmesh(['peer'])
    expect(noBoot.code).toBe(2)
    expect(noBoot.stderr).toContain('--bootstrap')
    const badPort = await shardmesh(['start', '--port', 'eighty'])
    expect(badPort.code).toBe(2)
    expect(badPort.stderr).toContain('--port')
    expect((await shardmesh(['peer', '--bootstrap', '/ip4/127.0.0.1/tcp/1'])).code).toBe(2)
  })
})
