// Node peers on the WebGPU backend in the pipeline: `start --local-backends webgpu,cpu,cpu`
// runs one `shardmesh peer --backend webgpu` (Dawn in Node; SwiftShader from Debian's chromium
// without a GPU) beside two CPU peers; at level low every peer serves a stage, so the webgpu
// peer holds one, and the mesh serves stories260K's golden tokens through /v1/completions.
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { storiesDir } from '../../test/fixtures.ts'
import { childrenOf, waitFor } from './helpers.ts'
import { cli, shardmesh } from './run-cli.ts'

const icd = process.env.VK_ICD_FILENAMES ?? '/usr/lib/chromium/vk_swiftshader_icd.json'
const dir = storiesDir()
const gguf = join(dir, 'stories260K.gguf')
const golden = JSON.parse(await readFile(join(dir, 'golden.json'), 'utf8')) as { cases: Array<{ prompt: string, text: string, generated_tokens: number[] }> }
const once = golden.cases.find(c => c.prompt === 'Once upon a time')!
/** Tokens asked for: the golden text's first 40 continue the prompt. */
const TOKENS = 40

const children: ChildProcess[] = []
const temps: string[] = []

/** Spawn the CLI in its own process group (afterEach kills it and its local peers); `first` is its first stdout line as JSON. */
function run (args: string[]): { child: ChildProcess, first: Promise<Record<string, any>> } {
  const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: { ...process.env, VK_ICD_FILENAMES: icd } })
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
  return { child, first }
}

afterEach(async () => {
  for (const c of children) {
    try { process.kill(-c.pid!, 'SIGKILL') } catch {}
  }
  children.length = 0
  for (const d of temps) await rm(d, { recursive: true, force: true })
  temps.length = 0
})

describe('a Node peer on --backend webgpu in a mixed pipeline', () => {
  it('serves a stage beside cpu peers: golden tokens through /v1/completions, its adapter and stage in /api/mesh', async () => {
    const store = await mkdtemp(join(tmpdir(), 'shardmesh-webgpu-peer-'))
    temps.push(store)
    const start = run(['start', '--model', gguf, '--local-peers', '3', '--local-backends', 'webgpu,cpu,cpu', '--ft-level', 'low', '--port', '0', '--json', '--store', store, '--mesh-id', `webgpu-peer-${process.pid}`])
    const info = await start.first
    const http = info.http as string
    const [gpuPeer, ...cpuPeers] = info.peers as string[] // in slot order: the first was given webgpu
    // each child got its own --backend
    const args = childrenOf(start.child.pid!).map(c => c.args)
    expect(args.filter(a => / peer .*--backend webgpu/.test(a))).toHaveLength(1)
    expect(args.filter(a => / peer .*--backend cpu/.test(a))).toHaveLength(2)

    // level low: every compute peer serves a stage (three stages), and says it holds its range
    let last: unknown
    const mesh = await waitFor('a 3-stage plan whose primaries hold their ranges', async () => {
      const m = await (await fetch(`${http}/api/mesh`)).json() as Record<string, any>
      last = m
      if (m.plan === null || m.plan.stages.length !== 3) return undefined
      const held = m.plan.stages.every((s: { primary: string, range: number[] }) => m.peers.find((p: { peerId: string, status: string, layers: number[][] }) =>
        p.peerId === s.primary && p.status === 'alive' && p.layers.some(([a, b]) => a <= s.range[0] && b >= s.range[1])))
      return held ? m : undefined
    }, 90_000).catch(err => { throw new Error(`${(err as Error).message}; last /api/mesh: ${JSON.stringify(last)}`) })
    const peer = (id: string): Record<string, any> => mesh.peers.find((p: { peerId: string }) => p.peerId === id)
    expect(peer(gpuPeer).backend).toMatchObject({
      kind: 'webgpu',
      adapter: { vendor: 'google', architecture: 'swiftshader', fallback: 'true', shaderF16: 'false' },
      limits: { maxStorageBufferBindingSize: expect.any(Number) }
    })
    // its join benchmark ran (on that backend: the backend it announces is the one it benched)
    expect(peer(gpuPeer).throughput.decodeTokensPerSecond).toBeGreaterThan(0)
    for (const id of cpuPeers) expect(peer(id).backend).toEqual({ kind: 'cpu' })
    const stage = mesh.plan.stages.find((s: { primary: string }) => s.primary === gpuPeer)
    expect(stage).toBeDefined()
    expect(new Set(mesh.plan.stages.map((s: { primary: string }) => s.primary))).toEqual(new Set(info.peers))

    const res = await fetch(`${http}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: info.name, prompt: once.prompt, max_tokens: TOKENS, temperature: 0 }) })
    expect(res.status).toBe(200)
    const body = await res.json() as { choices: Array<{ text: string }>, usage: { completion_tokens: number } }
    expect(body.usage.completion_tokens).toBe(TOKENS)
    // the golden text (run.c's) goes on past TOKENS: the completion is its continuation of the prompt
    expect(once.text.startsWith(once.prompt + body.choices[0].text)).toBe(true)
    const localRun = await shardmesh(['generate', '--local', '--model', gguf, '--prompt', once.prompt, '--max-tokens', String(TOKENS), '--json'])
    const local = JSON.parse(localRun.stdout) as { generated_tokens: number[], completion: string }
    expect(local.generated_tokens).toEqual(once.generated_tokens.slice(0, TOKENS))
    expect(body.choices[0].text).toBe(local.completion)
  }, 180_000)

  it('stops with a clear WebGpuError when there is no adapter, before joining (no cpu fallback)', async () => {
    const r = await shardmesh(['peer', '--backend', 'webgpu', '--bootstrap', '/ip4/127.0.0.1/tcp/9/ws/p2p/12D3KooWQf6EJidmtx9vRidZTeptnt7yy8LB6V87hTcgv3gYTzwh', '--json'], { VK_ICD_FILENAMES: '/nonexistent/icd.json' })
    expect(r.code).toBe(1)
    expect(r.stdout).toBe('')
    expect(r.stderr).toMatch(/^shardmesh: WebGpuError: no WebGPU adapter .*VK_ICD_FILENAMES=\/usr\/lib\/chromium\/vk_swiftshader_icd\.json/m)
  }, 60_000)

  it('refuses a bad --backend and a --local-backends list of the wrong length', async () => {
    const bad = await shardmesh(['peer', '--backend', 'cuda', '--bootstrap', '/ip4/127.0.0.1/tcp/9/ws/p2p/12D3KooWQf6EJidmtx9vRidZTeptnt7yy8LB6V87hTcgv3gYTzwh'])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/--backend must be cpu or webgpu, got "cuda"/)
    const short = await shardmesh(['start', '--model', gguf, '--local-peers', '3', '--local-backends', 'webgpu,cpu', '--port', '0'])
    expect(short.code).toBe(2)
    expect(short.stderr).toMatch(/--local-backends lists 2 backend\(s\); --local-peers is 3/)
    const typo = await shardmesh(['start', '--model', gguf, '--local-peers', '1', '--local-backends', 'gpu', '--port', '0'])
    expect(typo.code).toBe(2)
    expect(typo.stderr).toMatch(/--local-backends must be cpu or webgpu, got "gpu"/)
  }, 60_000)
})
