/**
 * Strategy attention_feedforward end to end: `shardmesh start --local-peers N --strategy
 * attention_feedforward` plans over the units of stories260K (each block's attention and
 * feed-forward halves), `/api/mesh` shows them, `/v1/completions` gives the golden tokens, and
 * a stage's process SIGKILLed mid-stream costs a recovery and no changed token. A second
 * mesh mixes a WebGPU (SwiftShader) peer with CPU peers.
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import OpenAI from 'openai'
import { afterEach, describe, expect, it } from 'vitest'
import { storiesDir } from '../../test/fixtures.ts'
import { childrenOf, streamedText, waitFor } from './helpers.ts'
import { cli } from './run-cli.ts'

const icd = process.env.VK_ICD_FILENAMES ?? '/usr/lib/chromium/vk_swiftshader_icd.json'
const dir = storiesDir()
const gguf = join(dir, 'stories260K.gguf')
const golden = JSON.parse(await readFile(join(dir, 'golden.json'), 'utf8')) as { cases: Array<{ prompt: string, text: string, generated_tokens: number[] }> }
const once = golden.cases.find(c => c.prompt === 'Once upon a time')!
const TOKENS = 40

interface Stage { range: [number, number], units?: [number, number], primary: string, standbys: string[], reason: string }

const children: ChildProcess[] = []
const temps: string[] = []
afterEach(async () => {
  for (const c of children) try { process.kill(-c.pid!, 'SIGKILL') } catch {}
  children.length = 0
  for (const d of temps) await rm(d, { recursive: true, force: true })
  temps.length = 0
})

async function start (args: string[]): Promise<{ child: ChildProcess, info: Record<string, any> }> {
  const store = await mkdtemp(join(tmpdir(), 'shardmesh-attn-ffn-'))
  temps.push(store)
  const child = spawn(process.execPath, [cli, 'start', '--model', gguf, '--strategy', 'attention_feedforward', '--port', '0', '--json', '--store', store, '--mesh-id', `attn-ffn-${process.pid}-${children.length}`, ...args], { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: { ...process.env, VK_ICD_FILENAMES: icd } })
  children.push(child)
  let stderr = ''
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString() })
  const info = await new Promise<Record<string, any>>((resolve, reject) => {
    let out = ''
    child.stdout!.on('data', (d: Buffer) => { out += d.toString(); if (out.includes('\n')) resolve(JSON.parse(out.slice(0, out.indexOf('\n')))) })
    child.once('exit', code => { reject(new Error(`start exited ${String(code)}: ${stderr}`)) })
  })
  return { child, info }
}

/** The plan, once it has `stages` stages whose primaries are alive and hold their layers. */
async function servedPlan (http: string, stages: number): Promise<{ stages: Stage[], strategy: string }> {
  let last: unknown
  return await waitFor(`a ${stages}-stage plan served`, async () => {
    const m = await (await fetch(`${http}/api/mesh`)).json() as Record<string, any>
    last = m.plan
    if (m.plan === null || m.plan.stages.length !== stages) return undefined
    const held = m.plan.stages.every((s: Stage) => m.peers.some((p: { peerId: string, status: string, layers: number[][] }) => p.peerId === s.primary && p.status === 'alive' && p.layers.some(([a, b]) => a <= s.range[0] && b >= s.range[1])))
    return held ? m.plan : undefined
  }, 120_000).catch(err => { throw new Error(`${(err as Error).message}; last plan: ${JSON.stringify(last)}`) })
}

/** The plan's cuts in units: consecutive, from 0 to 2·5, each stage's layers covering its units. */
function expectUnitChain (stages: Stage[]): void {
  let next = 0
  for (const s of stages) {
    const u = s.units ?? [2 * s.range[0], 2 * s.range[1]]
    expect(u[0]).toBe(next)
    expect(s.range).toEqual([Math.floor(u[0] / 2), Math.ceil(u[1] / 2)])
    expect(s.reason).toMatch(/units \(attention or feed-forward halves of blocks\)/)
    next = u[1]
  }
  expect(next).toBe(10)
}

async function completion (http: string, name: string): Promise<string> {
  const res = await fetch(`${http}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: name, prompt: once.prompt, max_tokens: TOKENS, temperature: 0 }) })
  expect(res.status).toBe(200)
  const body = await res.json() as { choices: Array<{ text: string }>, usage: { completion_tokens: number } }
  expect(body.usage.completion_tokens).toBe(TOKENS)
  return body.choices[0].text
}

describe('start --strategy attention_feedforward', () => {
  it('splits blocks between peers, gives the golden tokens, and survives a SIGKILLed stage with the same text', async () => {
    // level medium keeps one peer spare: three stages with a standby
    const { child, info } = await start(['--local-peers', '4'])
    const http = info.http as string
    const plan = await servedPlan(http, 3)
    expect(plan.strategy).toBe('attention_feedforward')
    expectUnitChain(plan.stages)
    // the golden text (run.c's) continues the prompt
    expect(once.text.startsWith(once.prompt + await completion(http, info.name as string))).toBe(true)

    const client = new OpenAI({ baseURL: `${http}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 120_000 })
    const body = { model: 'llama', prompt: 'Once upon a time', max_tokens: 120, temperature: 0.8, top_p: 0.9, seed: 11, stream: true as const }
    const read = async (onChunk?: (n: number) => void): Promise<string> => await streamedText(await client.completions.create(body), onChunk)
    const want = await read()
    expect(want.length).toBeGreaterThan(40)
    // kill the primary of a stage that starts or ends inside a block, if the plan has one (else the middle stage)
    const target = plan.stages.findIndex(s => s.units !== undefined)
    const victimId = plan.stages[target >= 0 ? target : 1].primary
    const slot = (info.peers as string[]).indexOf(victimId)
    const victim = childrenOf(child.pid!).find(c => c.args.includes(`peer-${slot}.key`))
    expect(victim).toBeDefined()
    const got = await read(n => { if (n === 10) process.kill(victim!.pid, 'SIGKILL') })
    expect(got).toBe(want)
    const { recoveries } = await (await fetch(`${http}/api/mesh`)).json() as { recoveries: Array<{ ok: boolean, failed: string[] }> }
    expect(recoveries.some(e => e.ok && e.failed.includes(victimId))).toBe(true)
  }, 240_000)

  it('mixes a WebGPU peer with CPU peers: golden tokens, its units in the plan', async () => {
    const { info } = await start(['--local-peers', '3', '--local-backends', 'webgpu,cpu,cpu', '--ft-level', 'low'])
    const http = info.http as string
    const plan = await servedPlan(http, 3)
    expectUnitChain(plan.stages)
    expect(plan.stages.map(s => s.primary)).toContain((info.peers as string[])[0])
    expect(once.text.startsWith(once.prompt + await completion(http, info.name as string))).toBe(true)
  }, 240_000)
})
