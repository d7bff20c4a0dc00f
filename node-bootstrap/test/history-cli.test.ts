import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { storiesDir } from '../../test/fixtures.ts'
import { waitFor } from './helpers.ts'
import { cli, shardmesh } from './run-cli.ts'

const gguf = join(storiesDir(), 'stories260K.gguf')
const children: ChildProcess[] = []
const temps: string[] = []

/** Spawn the CLI in its own process group; `first` is its first stdout line as JSON. */
function run (args: string[]): { child: ChildProcess, first: Promise<Record<string, any>>, exited: Promise<number | null> } {
  const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  children.push(child)
  let stdout = ''
  let stderr = ''
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString() })
  const exited = new Promise<number | null>(resolve => child.once('exit', code => { resolve(code) }))
  const first = new Promise<Record<string, any>>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString()
      if (stdout.includes('\n')) resolve(JSON.parse(stdout.slice(0, stdout.indexOf('\n'))))
    })
    child.once('exit', code => { reject(new Error(`shardmesh ${args[0]} exited ${String(code)}: ${stderr}`)) })
  })
  first.catch(() => {})
  return { child, first, exited }
}

afterAll(async () => {
  for (const c of children) {
    try { process.kill(-c.pid!, 'SIGKILL') } catch {}
  }
  for (const d of temps) await rm(d, { recursive: true, force: true })
})

async function historyJson (args: string[]): Promise<Record<string, any>> {
  const r = await shardmesh(['history', ...args, '--json'])
  expect(r.stderr).toBe('')
  expect(r.code).toBe(0)
  return JSON.parse(r.stdout)
}

describe('shardmesh start --db and shardmesh history', () => {
  it('records the plan and the generation timings of a completion; `history summary` reads them through the running node, then from the file once it stopped', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'shardmesh-history-'))
    temps.push(dir)
    const db = join(dir, 'h.duckdb')
    const start = run(['start', '--model', gguf, '--local-peers', '2', '--port', '0', '--json', '--store', join(dir, 'store'), '--mesh-id', `history-${process.pid}`, '--db', db])
    const info = await start.first
    expect(info.history).toBe(db)
    const http = info.http as string
    const plan = await waitFor('a plan on the two local peers', async () => {
      const m = await (await fetch(`${http}/api/mesh`)).json() as Record<string, any>
      return m.plan !== null && m.plan.stages.length === 2 ? m.plan : undefined
    })
    const res = await fetch(`${http}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: info.name, prompt: 'Once upon a time', max_tokens: 24 }) })
    expect(res.status).toBe(200)
    const completion = await res.json() as { usage: { completion_tokens: number } }

    // DuckDB lets one process open the file: while the node holds it, the CLI reads through its API
    const live = await historyJson(['summary', '--db', db])
    expect(live.source).toBe(http)
    const s = live.summary
    expect(s.latestPlan.plan_version).toBe(plan.version)
    expect(s.latestPlan.stages.map((x: { peer: string }) => x.peer)).toEqual(plan.stages.map((x: { primary: string }) => x.primary))
    expect(s.latestPlan.stages.map((x: { l0: number, l1: number }) => [x.l0, x.l1])).toEqual(plan.stages.map((x: { range: number[] }) => x.range))
    expect(s.generations.count).toBe(1)
    expect(s.generations.recent[0].tokens).toBe(completion.usage.completion_tokens)
    expect(s.generations.recent[0].route).toEqual(plan.stages.map((x: { primary: string }) => x.primary))
    const components = s.timings.map((t: { scope: string, component: string }) => `${t.scope}:${t.component}`)
    expect(components).toEqual(['route:decode', 'route:prefill'])
    for (const t of s.timings) expect(t.median_ms).toBeGreaterThan(0)
    expect(s.counts.peer_samples).toBeGreaterThanOrEqual(3) // the bootstrap and both peers announced a measured throughput

    const api = await (await fetch(`${http}/api/history/anomalies`)).json() as Record<string, any>
    expect(api.rule).toMatch(/≥ 3/)
    expect((await fetch(`${http}/api/history/nope`)).status).toBe(404)

    // a second process asking for the same file as its --db is refused, naming the holder
    const second = await shardmesh(['start', '--port', '0', '--mesh-id', `history-${process.pid}-b`, '--db', db])
    expect(second.code).toBe(2)
    expect(second.stderr).toMatch(new RegExp(`--db .*held by process ${start.child.pid!}`))

    start.child.kill('SIGTERM')
    expect(await start.exited).toBe(0)
    expect(existsSync(`${db}.owner.json`)).toBe(false)
    const after = await historyJson(['summary', '--db', db])
    expect(after.source).toBe(db)
    // (stopping the local peers may re-plan onto the bootstrap before it stops: a later plan, also recorded)
    expect(after.summary.plans.map((p: { id: string }) => p.id)).toContain(s.latestPlan.id)
    expect(after.summary.generations.count).toBe(1)
    expect(after.summary.counts.timings).toBe(s.counts.timings)
  }, 180_000)

  it('explains a missing file and an unknown action', async () => {
    const missing = await shardmesh(['history', 'summary', '--db', join(tmpdir(), `no-such-${process.pid}.duckdb`)])
    expect(missing.code).toBe(2)
    expect(missing.stderr).toMatch(/no history at/)
    const bad = await shardmesh(['history', 'bogus', '--db', 'x'])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/history takes one of summary, peers, anomalies, recommend, export/)
  })
})
