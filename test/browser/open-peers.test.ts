// `shardmesh start --open-peers N` (issue 11): the bootstrap opens its own peer page in N
// headless Chromium tabs, which join as browser peers on WebGPU (SwiftShader) and serve the
// model. Run inside a test-made network namespace (WebRTC needs a non-loopback interface;
// nothing leaves it): the start process, and so the Chromium it launches, live in it.
import type { ChildProcess } from 'node:child_process'
import { execFile } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTokenizer } from '@shardmesh/model'
import { loadModel } from '@shardmesh/model/node'
import { repoRoot, storiesDir } from '../fixtures.ts'
import { createNetns } from '../netns.ts'
import type { Netns } from '../netns.ts'
import { CHROMIUM_PATH } from './chromium.ts'
import { builtPage, waitFor } from './peer-mesh.ts'
import type { ApiMesh } from './peer-mesh.ts'

const cli = resolve(repoRoot, 'node-bootstrap/src/cli.ts')
const dir = storiesDir()
const gguf = join(dir, 'stories260K.gguf')
const golden = JSON.parse(await readFile(join(dir, 'golden.json'), 'utf8')) as { cases: Array<{ tag: string, prompt: string, generated_tokens: number[] }> }
const once0 = golden.cases.find(c => c.tag === 'main' && c.prompt === 'Once upon a time')!
const tokenizer = createTokenizer((await loadModel(gguf)).tokenizer!)
const N = 16

let ns: Netns
let start: ChildProcess
let store: string
let info: { peerId: string, http: string, page: string }
let stderr = ''

async function http (path: string, body?: unknown): Promise<any> {
  const init = body === undefined ? '{}' : JSON.stringify({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  const script = `fetch(${JSON.stringify(info.http + path)}, ${init}).then(async r => { const t = await r.text(); if (!r.ok) { process.stderr.write(r.status + ' ' + t); process.exit(1) } process.stdout.write(t) })`
  return JSON.parse(await ns.exec(process.execPath, ['-e', script]))
}

/** Chromium processes started with the --open-peers profile (their command line names it). */
async function openPeerChromiums (): Promise<number> {
  const out = await promisify(execFile)('ps', ['-eo', 'args']).then(r => r.stdout, () => '')
  return out.split('\n').filter(l => l.includes('shardmesh-open-peers-') && !l.includes('ps -eo')).length
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM_PATH)) throw new Error(`Chromium not found at ${CHROMIUM_PATH}: install Debian's chromium (bash scripts/install-system.sh, as root) or set CHROMIUM_PATH`)
  const page = await builtPage('open-peers')
  ns = await createNetns()
  store = await mkdtemp(join(tmpdir(), 'shardmesh-store-'))
  start = ns.spawn(process.execPath, [cli, 'start', '--model', gguf, '--store', store, '--open-peers', '2', '--port', '0', '--host', '127.0.0.1', '--json',
    '--listen', `/ip4/${ns.address}/tcp/0/ws`, '--mesh-id', `open-peers-${process.pid}`], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CHROMIUM_PATH, SHARDMESH_PAGE_DIST: page } })
  start.stderr!.on('data', (d: Buffer) => { stderr += d.toString() })
  info = await new Promise((res, rej) => {
    let out = ''
    start.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      const nl = out.indexOf('\n')
      if (nl >= 0) res(JSON.parse(out.slice(0, nl)))
    })
    start.once('exit', code => { rej(new Error(`shardmesh start exited ${String(code)}: ${stderr}`)) })
  })
}, 120_000)

afterAll(async () => {
  if (start !== undefined && start.exitCode === null && start.signalCode === null) {
    start.kill('SIGKILL')
    await once(start, 'exit')
  }
  await ns?.destroy()
  if (store !== undefined) await rm(store, { recursive: true, force: true })
}, 60_000)

describe('shardmesh start --open-peers 2', () => {
  it('prints the peer page URL; two Chromium tabs join on WebGPU, serve a 2-stage plan and give the golden tokens', async () => {
    expect(info.page).toBe(`${info.http}/`)
    const mesh = await waitFor('two browser peers serving a 2-stage plan', async () => {
      const v = await http('/api/mesh') as ApiMesh
      const tabs = v.peers.filter(p => p.runtime.name === 'chrome' && p.status === 'alive' && p.backend.kind === 'webgpu')
      const served = v.plan?.stages.every(s => tabs.some(t => t.peerId === s.primary && t.layers.some(([a, b]) => a <= s.range[0] && b >= s.range[1])))
      return tabs.length === 2 && v.plan?.stages.length === 2 && served === true ? v : undefined
    }, 120_000, async () => `${JSON.stringify(await http('/api/mesh').catch(String))} ${stderr.slice(-2000)}`)
    expect(mesh.plan!.stages.every(s => s.primary !== info.peerId)).toBe(true)
    const model = (await http('/v1/models')).data[0].id as string
    const r = await http('/v1/completions', { model, prompt: once0.prompt, max_tokens: N, temperature: 0 })
    expect(r.choices[0].text).toBe(tokenizer.decode(once0.generated_tokens.slice(0, N), { prev: tokenizer.encode(once0.prompt).at(-1) }))
  }, 150_000)

  it('stops its Chromium when it stops', async () => {
    expect(await openPeerChromiums()).toBeGreaterThan(0)
    start.kill('SIGTERM')
    await once(start, 'exit')
    await waitFor('Chromium to exit', async () => await openPeerChromiums() === 0 ? true : undefined, 20_000)
  }, 60_000)
})
