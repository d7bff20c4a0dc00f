/**
 * The user story: `shardmesh start --local-peers 3`, a streamed completion through the
 * unmodified `openai` client, one stage's process SIGKILLed mid-stream — the stream completes
 * with the same text as without the kill, and the head records the recovery.
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import OpenAI from 'openai'
import { afterAll, describe, expect, it } from 'vitest'
import { storiesDir } from '../../test/fixtures.ts'
import { childrenOf, streamedText, waitFor } from './helpers.ts'
import { cli } from './run-cli.ts'

const gguf = join(storiesDir(), 'stories260K.gguf')

describe('a streamed OpenAI completion through start --local-peers 3', () => {
  let start: ChildProcess | undefined
  let store: string | undefined
  afterAll(async () => {
    if (start?.pid !== undefined) try { process.kill(-start.pid, 'SIGKILL') } catch {}
    if (store !== undefined) await rm(store, { recursive: true, force: true })
  })

  it('completes with the same text when a stage process is SIGKILLed mid-stream, and the plan moves the range to its standby', async () => {
    store = await mkdtemp(join(tmpdir(), 'shardmesh-stream-kill-'))
    start = spawn(process.execPath, [cli, 'start', '--model', gguf, '--local-peers', '3', '--port', '0', '--json', '--store', store, '--mesh-id', `stream-kill-${process.pid}`], { stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    let stderr = ''
    start.stderr!.on('data', (d: Buffer) => { stderr += d.toString() })
    const info = await new Promise<Record<string, any>>((resolve, reject) => {
      let out = ''
      start!.stdout!.on('data', (d: Buffer) => { out += d.toString(); if (out.includes('\n')) resolve(JSON.parse(out.slice(0, out.indexOf('\n')))) })
      start!.once('exit', code => { reject(new Error(`start exited ${String(code)}: ${stderr}`)) })
    })
    const http = info.http as string
    const mesh = async (): Promise<Record<string, any>> => await (await fetch(`${http}/api/mesh`)).json() as Record<string, any>
    // level medium (the default) keeps one of the three peers spare: two stages, each with a standby
    const plan = await waitFor('a 2-stage plan served by the local peers, with a standby', async () => {
      const m = await mesh()
      const alive = new Set(m.peers.filter((p: { status: string }) => p.status === 'alive').map((p: { peerId: string }) => p.peerId))
      return m.plan?.stages.length === 2 && m.plan.stages.every((s: { primary: string, standbys: string[] }) => alive.has(s.primary) && s.standbys.length === 1) ? m.plan : undefined
    })
    const client = new OpenAI({ baseURL: `${http}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 120_000 })
    const body = { model: 'llama', prompt: 'Once upon a time', max_tokens: 120, temperature: 0.8, top_p: 0.9, seed: 11, stream: true as const }
    const read = async (onChunk?: (n: number) => void): Promise<string> => await streamedText(await client.completions.create(body), onChunk)
    const want = await read()
    expect(want.length).toBeGreaterThan(40)

    // the first stage's primary: its process is the local peer with its slot's key file
    const victimId = plan.stages[0].primary as string
    const slot = (info.peers as string[]).indexOf(victimId)
    expect(slot).toBeGreaterThanOrEqual(0)
    const victim = childrenOf(start.pid!).find(c => c.args.includes(`peer-${slot}.key`))
    expect(victim).toBeDefined()
    const got = await read(n => { if (n === 10) process.kill(victim!.pid, 'SIGKILL') })
    expect(got).toBe(want)

    const { recoveries } = await mesh()
    expect(recoveries.length).toBeGreaterThanOrEqual(1)
    const e = recoveries[recoveries.length - 1]
    expect(e).toMatchObject({ ok: true, level: 'medium', strategy: 'progressive' })
    expect(e.failed).toContain(victimId)
    expect(e.stages).toEqual([0])
    expect(e.path).toBe('replay')
    // the coordinator hands the range to the standby the head moved the session to
    const after = await waitFor('a plan without the killed primary', async () => {
      const m = await mesh()
      return m.plan.stages[0].primary !== victimId ? m.plan : undefined
    })
    expect(after.stages[0].primary).toBe(plan.stages[0].standbys[0])
    expect(after.stages[1].primary).toBe(plan.stages[1].primary)
  })
})
