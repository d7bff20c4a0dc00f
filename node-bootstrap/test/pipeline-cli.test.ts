import { execFileSync, spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import OpenAI from 'openai'
import { afterEach, describe, expect, it } from 'vitest'
import { repoRoot, storiesDir } from '../../test/fixtures.ts'
import { waitFor } from './helpers.ts'

const cli = resolve(repoRoot, 'node-bootstrap/src/cli.ts')
const dir = storiesDir()
const gguf = join(dir, 'stories260K.gguf')
const golden = JSON.parse(await readFile(join(dir, 'golden.json'), 'utf8')) as { cases: Array<{ prompt: string, generated_tokens: number[] }> }
const once = golden.cases.find(c => c.prompt === 'Once upon a time')!

const children: ChildProcess[] = []
const temps: string[] = []

/** Spawn the CLI in its own process group, so afterEach kills it and the peers it spawned. */
function run (args: string[]): { child: ChildProcess, first: Promise<Record<string, any>>, done: Promise<{ code: number | null, stdout: string, stderr: string }> } {
  const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  children.push(child)
  let stdout = ''
  let stderr = ''
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString() })
  const first = new Promise<Record<string, any>>((res, rej) => {
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString()
      if (stdout.includes('\n')) res(JSON.parse(stdout.slice(0, stdout.indexOf('\n'))))
    })
    child.once('exit', code => { rej(new Error(`shardmesh ${args[0]} exited ${String(code)}: ${stderr}`)) })
  })
  first.catch(() => {}) // awaited only by tests that need it
  const done = new Promise<{ code: number | null, stdout: string, stderr: string }>(res => { child.once('exit', code => { res({ code, stdout, stderr }) }) })
  return { child, first, done }
}

async function store (): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'shardmesh-pipeline-'))
  temps.push(d)
  return d
}

afterEach(async () => {
  for (const c of children) {
    try { process.kill(-c.pid!, 'SIGKILL') } catch {} // the group: the CLI and its local peers
  }
  children.length = 0
  for (const d of temps) await rm(d, { recursive: true, force: true })
  temps.length = 0
})

describe('shardmesh start --local-peers: one command runs a whole mesh', () => {
  it('serves the OpenAI API through a 2-stage plan with golden tokens; /api/mesh shows the plan and load', async () => {
    const meshId = `pipeline-cli-${process.pid}-a`
    const start = run(['start', '--model', gguf, '--local-peers', '2', '--port', '0', '--json', '--store', await store(), '--mesh-id', meshId])
    const info = await start.first
    expect(info.peers).toHaveLength(2)
    const client = new OpenAI({ baseURL: `${info.http as string}/v1`, apiKey: 'none', maxRetries: 0 })
    const models = await client.models.list()
    expect(models.data).toHaveLength(1)
    const model = models.data[0].id

    // the golden continuation, decoded by a local --local run of the same model
    const local = await run(['generate', '--local', '--model', gguf, '--prompt', once.prompt, '--max-tokens', '20', '--json']).done
    const want = JSON.parse(local.stdout) as { generated_tokens: number[], completion: string }
    expect(want.generated_tokens).toEqual(once.generated_tokens.slice(0, 20))

    const r = await client.completions.create({ model, prompt: once.prompt, max_tokens: 20, temperature: 0 })
    expect(r.choices[0].text).toBe(want.completion)
    expect(r.usage).toMatchObject({ prompt_tokens: 5, completion_tokens: 20, total_tokens: 25 })

    const stream = await client.completions.create({ model, prompt: once.prompt, max_tokens: 20, temperature: 0, stream: true })
    let text = ''
    for await (const chunk of stream) text += chunk.choices[0]?.text ?? ''
    expect(text).toBe(want.completion)

    const chat = await client.chat.completions.create({ model, messages: [{ role: 'user', content: once.prompt }], max_tokens: 20, temperature: 0 })
    expect(chat.choices[0].message.content).toBe(want.completion)

    const mesh = await (await fetch(`${info.http as string}/api/mesh`)).json()
    expect(mesh.plan).toMatchObject({ version: expect.any(Number), strategy: 'layer' })
    expect(mesh.plan.stages).toHaveLength(2)
    expect(mesh.plan.stages.map((s: { range: number[] }) => s.range)).toEqual([[0, 2], [2, 5]])
    expect(new Set(mesh.plan.stages.map((s: { primary: string }) => s.primary))).toEqual(new Set(info.peers))
    for (const s of mesh.plan.stages) expect(s.reason).toMatch(/^layer: /)
    for (const p of mesh.peers) expect(typeof p.load).toBe('number')
  })

  it('generate --local-peers 2 --json prints the --local tokens plus the plan', async () => {
    const args = ['--model', gguf, '--prompt', once.prompt, '--max-tokens', '20', '--json']
    const [viaMesh, local] = await Promise.all([
      run(['generate', '--local-peers', '2', '--mesh-id', `pipeline-cli-${process.pid}-b`, ...args]).done,
      run(['generate', '--local', ...args]).done
    ])
    expect(viaMesh.code).toBe(0)
    const a = JSON.parse(viaMesh.stdout)
    const b = JSON.parse(local.stdout)
    expect(a.generated_tokens).toEqual(b.generated_tokens)
    expect(a.generated_tokens).toEqual(once.generated_tokens.slice(0, 20))
    expect(a.completion).toBe(b.completion)
    expect(a.plan.stages).toHaveLength(2)
    expect(a.stages).toEqual([[0, 2], [2, 5]])
  })

  it('a peer joining with --port serves the API too; when a primary dies the plan moves off it and generation goes on', async () => {
    const meshId = `pipeline-cli-${process.pid}-c`
    const start = run(['start', '--model', gguf, '--local-peers', '2', '--port', '0', '--json', '--store', await store(), '--mesh-id', meshId])
    const info = await start.first
    const ws = (info.addrs as string[]).find(a => a.includes('/ws/'))!
    const extra = await run(['peer', '--bootstrap', ws, '--port', '0', '--json', '--mesh-id', meshId]).first
    const client = new OpenAI({ baseURL: `${extra.http as string}/v1`, apiKey: 'none', maxRetries: 0 })
    const complete = async (): Promise<string> => (await client.completions.create({ model: info.name, prompt: once.prompt, max_tokens: 20, temperature: 0 })).choices[0].text
    const want = await complete() // through the two local peers, driven from the extra peer
    expect(JSON.parse((await run(['generate', '--local', '--model', gguf, '--prompt', once.prompt, '--max-tokens', '20', '--json']).done).stdout).completion).toBe(want)

    const mesh = async (): Promise<any> => await (await fetch(`${info.http as string}/api/mesh`)).json()
    // the joiner becomes a standby; running ranges stay
    let stages: unknown
    await waitFor('the joiner as standby of every stage', async () => {
      const m = await mesh()
      stages = m.plan.stages
      return m.plan.stages.every((s: { standbys: string[] }) => s.standbys.includes(extra.peerId)) ? true : undefined
    }).catch((err: Error) => { throw new Error(`${err.message}; joiner ${String(extra.peerId)}, last plan: ${JSON.stringify(stages)}`) })
    const localPids = execFileSync('ps', ['-o', 'pid=', '--ppid', String(start.child.pid)]).toString().trim().split(/\s+/).map(Number)
    expect(localPids).toHaveLength(2)
    process.kill(localPids[0], 'SIGKILL')
    const moved = await waitFor('the plan to move off the dead primary', async () => {
      const m = await mesh()
      const dead = m.peers.filter((p: { status: string }) => p.status === 'dead').map((p: { peerId: string }) => p.peerId)
      return dead.length === 1 && !m.plan.stages.some((s: { primary: string }) => dead.includes(s.primary)) ? m : undefined
    })
    expect(moved.plan.stages.map((s: { primary: string }) => s.primary)).toContain(extra.peerId)
    expect(await complete()).toBe(want)
  }, 240_000) // three processes, two completions, a join and a kill detected: 35 s idle, 90 s and more on a loaded machine

  it('refuses --local-peers without a model and a bad strategy', async () => {
    expect((await run(['start', '--local-peers', '2', '--port', '0']).done).code).toBe(2)
    expect((await run(['start', '--model', gguf, '--strategy', 'nope', '--port', '0']).done).code).toBe(2)
  })
})
