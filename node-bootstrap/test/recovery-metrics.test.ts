import { execFileSync, spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { storiesDir } from '../../test/fixtures.ts'
import { samples } from './helpers.ts'
import { cli } from './run-cli.ts'

const gguf = join(storiesDir(), 'stories260K.gguf')
const children: ChildProcess[] = []
const temps: string[] = []

afterEach(async () => {
  for (const c of children.splice(0)) {
    try { process.kill(-c.pid!, 'SIGKILL') } catch {}
  }
  for (const d of temps.splice(0)) await rm(d, { recursive: true, force: true })
})

/** `shardmesh start … --json` in its own process group; resolves with its first line. */
async function start (args: string[]): Promise<{ child: ChildProcess, info: Record<string, any> }> {
  const child = spawn(process.execPath, [cli, 'start', ...args, '--json'], { stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  children.push(child)
  let err = ''
  child.stderr!.on('data', (d: Buffer) => { err += d.toString() })
  const info = await new Promise<Record<string, any>>((resolve, reject) => {
    let out = ''
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      if (out.includes('\n')) resolve(JSON.parse(out.slice(0, out.indexOf('\n'))))
    })
    child.once('exit', code => { reject(new Error(`start exited ${String(code)}: ${err}`)) })
  })
  return { child, info }
}

/** Stream a completion (SSE); `onChunk` sees the number of chunks so far. */
async function stream (http: string, model: string, onChunk: (n: number) => void): Promise<string> {
  const res = await fetch(`${http}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model, prompt: 'Once upon a time', max_tokens: 60, temperature: 0, stream: true }) })
  expect(res.status).toBe(200)
  let text = ''
  let buf = ''
  let n = 0
  const decoder = new TextDecoder()
  const reader = res.body!.getReader()
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    buf += decoder.decode(value, { stream: true })
    let nl: number
    while ((nl = buf.indexOf('\n\n')) >= 0) {
      const event = buf.slice(0, nl)
      buf = buf.slice(nl + 2)
      const data = event.replace(/^data: /, '')
      if (data === '[DONE]') return text
      const body = JSON.parse(data)
      if (body.error !== undefined) throw new Error(`stream error: ${JSON.stringify(body.error)}`)
      text += body.choices[0]?.text ?? ''
      onChunk(++n)
    }
  }
  return text
}

describe('a recovery is visible in /api/mesh and /metrics', () => {
  it('a stage primary SIGKILLed mid-stream: same text, one recovery event naming it, counted in the metrics', async () => {
    const store = await mkdtemp(join(tmpdir(), 'shardmesh-recovery-'))
    temps.push(store)
    const { child, info } = await start(['--model', gguf, '--local-peers', '3', '--port', '0', '--store', store, '--mesh-id', `recovery-metrics-${process.pid}`, '--ft-level', 'medium', '--recovery', 'failover'])
    const http = info.http as string
    const mesh = async (): Promise<Record<string, any>> => await (await fetch(`${http}/api/mesh`)).json() as Record<string, any>
    const want = await stream(http, info.name as string, () => {})
    expect(want.length).toBeGreaterThan(0)

    // the middle stage's primary, by its key file (slot i is info.peers[i])
    const m = await mesh()
    const victim = m.plan.stages[1].primary as string
    const slot = (info.peers as string[]).indexOf(victim)
    expect(slot).toBeGreaterThanOrEqual(0)
    const pid = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(child.pid)]).toString().trim().split('\n')
      .map(l => /^\s*(\d+)\s+(.*)$/.exec(l)!).find(x => x[2].includes(`peer-${slot}.key`))![1]
    const got = await stream(http, info.name as string, n => { if (n === 10) process.kill(Number(pid), 'SIGKILL') })
    expect(got).toBe(want)

    const after = await mesh()
    const events = (after.recoveries as Array<Record<string, any>>).filter(e => (e.failed as string[]).includes(victim))
    expect(events.length).toBeGreaterThanOrEqual(1)
    expect(events.at(-1)).toMatchObject({ ok: true, level: 'medium', strategy: 'failover', stages: expect.arrayContaining([1]) })
    expect(['replay', 'reprefill']).toContain(events.at(-1)!.path)
    const s = samples(await (await fetch(`${http}/metrics`)).text())
    const ok = [...s].filter(([k]) => k.startsWith('shardmesh_recoveries_total{') && k.includes('ok="true"')).reduce((n, [, v]) => n + v, 0)
    expect(ok).toBe((after.recoveries as Array<{ ok: boolean }>).filter(e => e.ok).length)
    const stalls = [...s].filter(([k]) => k.startsWith('shardmesh_recovery_stall_ms_count{')).reduce((n, [, v]) => n + v, 0)
    expect(stalls).toBe(ok)
  })
})
