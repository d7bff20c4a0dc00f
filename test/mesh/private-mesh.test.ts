// Private meshes (issue 13), real processes: `shardmesh start --private --local-peers 2` and an
// unadmitted `shardmesh peer` with the right mesh id. The unadmitted peer gets no stage, is
// never coordinator (the bootstrap coordinator is stopped: an admitted peer takes over), its
// sessions are refused by the stage servers (NOT_ADMITTED), and a generation through the mesh
// gives the golden tokens; `shardmesh admit --url` gives it a stage at the next plan, and
// `shardmesh admit --revoke` takes it away at the next one.
import { spawn, execFile } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTokenizer } from '@shardmesh/model'
import { loadModel } from '@shardmesh/model/node'
import { repoRoot, storiesDir } from '../fixtures.ts'

const cli = resolve(repoRoot, 'node-bootstrap/src/cli.ts')
const dir = storiesDir()
const gguf = join(dir, 'stories260K.gguf')
const golden = JSON.parse(await readFile(join(dir, 'golden.json'), 'utf8')) as { cases: Array<{ tag: string, prompt: string, generated_tokens: number[] }> }
const case0 = golden.cases.find(c => c.tag === 'main' && c.prompt === 'Once upon a time')!
const tokenizer = createTokenizer((await loadModel(gguf)).tokenizer!)
const N = 16

interface ApiMesh {
  coordinator: string | null
  peers: Array<{ peerId: string, status: string }>
  plan: { version: number, stages: Array<{ range: [number, number], primary: string, standbys: string[] }> } | null
}

const children: ChildProcess[] = []
let store: string
let start: ChildProcess
let info: { peerId: string, http: string, addrs: string[], peers: string[] }
let outsiderInfo: { peerId: string, http: string }
let meshId: string

function run (args: string[]): { child: ChildProcess, json: Promise<any> } {
  const child = spawn(process.execPath, [cli, ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
  children.push(child)
  let err = ''
  child.stderr!.on('data', (d: Buffer) => { err += d.toString() })
  const json = new Promise((resolve, reject) => {
    let out = ''
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      const nl = out.indexOf('\n')
      if (nl >= 0) resolve(JSON.parse(out.slice(0, nl)))
    })
    child.once('exit', code => { reject(new Error(`shardmesh ${args[0]} exited ${String(code)}: ${err}`)) })
  })
  return { child, json }
}

async function get (base: string, path: string): Promise<any> {
  const r = await fetch(base + path)
  return await r.json()
}

async function post (base: string, path: string, body: unknown): Promise<{ status: number, body: any }> {
  const r = await fetch(base + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  return { status: r.status, body: await r.json() }
}

async function waitFor<T> (what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const until = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const v = await probe()
      if (v !== undefined) return v
    } catch (err) { last = err }
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}${last === undefined ? '' : `: ${String(last)}`}`)
    await new Promise(resolve => setTimeout(resolve, 250))
  }
}

const inPlan = (m: ApiMesh, peer: string): boolean => m.plan?.stages.some(s => s.primary === peer || s.standbys.includes(peer)) ?? false

beforeAll(async () => {
  store = await mkdtemp(join(tmpdir(), 'shardmesh-private-'))
  // --ft-level low: every compute peer serves a stage when the plan is made
  const s = run(['start', '--model', gguf, '--store', store, '--private', '--local-peers', '2', '--ft-level', 'low', '--port', '0', '--json'])
  start = s.child
  info = await s.json
  // the operator's mesh id, as `admit` (offline, with the store's operator key) prints it
  const { stdout } = await promisify(execFile)(process.execPath, [cli, 'admit', info.peerId, '--store', store, '--json'])
  meshId = JSON.parse(stdout).meshId
  const bootstrap = info.addrs.find(a => a.includes('/ws/')) ?? info.addrs[0]
  const o = run(['peer', '--bootstrap', bootstrap, '--mesh-id', meshId, '--key', join(store, 'outsider.key'), '--port', '0', '--ft-level', 'low', '--json'])
  outsiderInfo = await o.json
}, 180_000)

afterAll(async () => {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) {
      c.kill('SIGCONT')
      c.kill('SIGKILL')
      await once(c, 'exit')
    }
  }
  if (store !== undefined) await rm(store, { recursive: true, force: true })
}, 60_000)

describe('shardmesh start --private', () => {
  it('runs the mesh of the operator key; the local peers are admitted and serve, the outsider gets no stage', async () => {
    expect(meshId).toMatch(/^private-12D3Koo/)
    const mesh = await waitFor('the two local peers serving the plan, the outsider seen', async () => {
      const m = await get(info.http, '/api/mesh') as ApiMesh
      return info.peers.every(p => inPlan(m, p)) && m.peers.some(p => p.peerId === outsiderInfo.peerId && p.status === 'alive') ? m : undefined
    }, 120_000)
    expect(inPlan(mesh, outsiderInfo.peerId)).toBe(false)
    expect(mesh.coordinator).not.toBe(outsiderInfo.peerId)
  }, 150_000)

  it('a generation gives the golden tokens; the outsider as head is refused NOT_ADMITTED by the stage servers', async () => {
    const r = await post(info.http, '/v1/completions', { model: 'llama', prompt: case0.prompt, max_tokens: N, temperature: 0 })
    expect(r.status).toBe(200)
    expect(r.body.choices[0].text).toBe(tokenizer.decode(case0.generated_tokens.slice(0, N), { prev: tokenizer.encode(case0.prompt).at(-1) }))
    // the outsider follows the state and the plan, and opens sessions as a head: every stage server refuses it
    await waitFor('the outsider to know the model', async () => (await get(outsiderInfo.http, '/v1/models')).data?.length > 0 ? true : undefined, 90_000)
    const refused = await post(outsiderInfo.http, '/v1/completions', { model: 'llama', prompt: case0.prompt, max_tokens: N, temperature: 0 })
    expect(refused.status).toBeGreaterThanOrEqual(400)
    expect(JSON.stringify(refused.body)).toContain('NOT_ADMITTED')
    // and the admitted mesh goes on undisturbed
    const again = await post(info.http, '/v1/completions', { model: 'llama', prompt: case0.prompt, max_tokens: N, temperature: 0 })
    expect(again.body.choices[0].text).toBe(r.body.choices[0].text)
  }, 150_000)

  it('the coordinator stops: another admitted peer takes over, never the outsider', async () => {
    const before = await get(outsiderInfo.http, '/api/mesh') as ApiMesh & { term: number }
    const admitted = [info.peerId, ...info.peers]
    expect(admitted).toContain(before.coordinator)
    // stop the coordinator's process (SIGSTOP: the bootstrap, or a local peer found by its key file)
    let pid = start.pid!
    const i = info.peers.indexOf(before.coordinator!)
    if (i >= 0) {
      const { stdout } = await promisify(execFile)('ps', ['-eo', 'pid,args'])
      pid = Number(stdout.split('\n').find(l => l.includes(join(store, 'local-peers', `peer-${i}.key`)))!.trim().split(/\s+/)[0])
    }
    process.kill(pid, 'SIGSTOP')
    try {
      const next = await waitFor('a new coordinator', async () => {
        const m = await get(outsiderInfo.http, '/api/mesh') as ApiMesh & { term: number }
        return m.coordinator !== null && m.coordinator !== before.coordinator && m.term > before.term ? m.coordinator : undefined
      }, 60_000).catch(async err => { throw new Error(`${(err as Error).message}; the outsider sees ${JSON.stringify(await get(outsiderInfo.http, '/api/mesh'))}`) })
      expect(admitted).toContain(next)
      expect(next).not.toBe(outsiderInfo.peerId)
    } finally {
      process.kill(pid, 'SIGCONT')
    }
  }, 90_000)

  it('admitted with `shardmesh admit --url`, the outsider gets a stage at the next plan; revoked, it loses it at the next one', async () => {
    const exec = promisify(execFile)
    const { stdout } = await exec(process.execPath, [cli, 'admit', outsiderInfo.peerId, '--url', info.http, '--roles', 'compute', '--expires', '1h'], { timeout: 60_000 })
    expect(stdout.trim()).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/)
    await waitFor('the admitted outsider in the plan', async () => inPlan(await get(info.http, '/api/mesh') as ApiMesh, outsiderInfo.peerId) ? true : undefined, 90_000)
    await exec(process.execPath, [cli, 'admit', outsiderInfo.peerId, '--url', info.http, '--revoke'], { timeout: 60_000 })
    const m = await waitFor('the revoked outsider out of the plan', async () => {
      const v = await get(info.http, '/api/mesh') as ApiMesh
      return inPlan(v, outsiderInfo.peerId) ? undefined : v
    }, 90_000)
    expect(info.peers.every(p => inPlan(m, p))).toBe(true)
    const r = await post(info.http, '/v1/completions', { model: 'llama', prompt: case0.prompt, max_tokens: N, temperature: 0 })
    expect(r.body.choices[0].text).toBe(tokenizer.decode(case0.generated_tokens.slice(0, N), { prev: tokenizer.encode(case0.prompt).at(-1) }))
  }, 240_000)
})
