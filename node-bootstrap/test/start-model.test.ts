import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdtemp, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { cpuBackend, generate } from '@shardmesh/engine'
import { createMeshPeer } from '@shardmesh/mesh'
import type { MeshNode } from '@shardmesh/mesh'
import { createTokenizer } from '@shardmesh/model'
import { weightsNode } from '@shardmesh/weights'
import type { WeightsNode } from '@shardmesh/weights'
import { repoRoot, storiesDir } from '../../test/fixtures.ts'

const cli = resolve(repoRoot, 'node-bootstrap/src/cli.ts')
const dir = storiesDir()
const golden = JSON.parse(await readFile(join(dir, 'golden.json'), 'utf8')) as { cases: Array<{ prompt: string, generated_tokens: number[] }> }
const once = golden.cases.find(c => c.prompt === 'Once upon a time')!

interface Started { child: ChildProcess, info: Promise<Record<string, any>> }

function start (args: string[]): Started {
  const child = spawn(process.execPath, [cli, 'start', '--port', '0', '--json', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let err = ''
  child.stderr!.on('data', (d: Buffer) => { err += d.toString() })
  const info = new Promise<Record<string, any>>((res, rej) => {
    let out = ''
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      if (out.includes('\n')) res(JSON.parse(out.slice(0, out.indexOf('\n'))))
    })
    child.once('exit', code => { rej(new Error(`start exited ${String(code)}: ${err}`)) })
  })
  return { child, info }
}

describe('shardmesh start --model', () => {
  const children: ChildProcess[] = []
  const nodes: Array<{ weights: WeightsNode, node: MeshNode }> = []
  afterEach(async () => {
    for (const n of nodes) { await n.weights.stop(); await n.node.stop() }
    nodes.length = 0
    for (const c of children) c.kill('SIGKILL')
    children.length = 0
  })

  it('imports a model file, provides its blocks to a joining peer, and serves it again by CID', async () => {
    const store = await mkdtemp(join(tmpdir(), 'shardmesh-store-'))
    const first = start(['--model', join(dir, 'stories260K.gguf'), '--store', store])
    children.push(first.child)
    const { model: cid, addrs } = await first.info
    expect(cid).toMatch(/^b[a-z2-7]+$/) // a CIDv1 in base32

    // a peer that joins through the bootstrap fetches layers from it over bitswap
    const bootstrap = addrs.filter((a: string) => a.includes('/ws/'))
    const node = await createMeshPeer({ bootstrap })
    const weights = weightsNode({ libp2p: node })
    await weights.start()
    nodes.push({ weights, node })
    const manifest = await weights.openManifest(cid, { providers: bootstrap })
    const stage = await weights.fetchStage(manifest, [0, manifest.config.nLayers], { providers: bootstrap })
    const engine = await cpuBackend().createStage({ config: stage.config, layers: stage.layers, tensors: stage.tensors })
    const result = await generate({
      sessions: [engine.createSession()],
      promptTokens: createTokenizer(stage.tokenizer!).encode(once.prompt),
      maxTokens: 20,
      contextLength: stage.config.contextLength
    })
    expect(result.tokens).toEqual(once.generated_tokens.slice(0, 20))
    await engine.close()

    // restarted with the CID, it reads the manifest from its store instead of importing
    first.child.kill('SIGKILL')
    const again = start(['--model', cid, '--store', store])
    children.push(again.child)
    expect((await again.info).model).toBe(cid)
  })

  it('refuses a CID it does not hold with a clear error', async () => {
    const store = await mkdtemp(join(tmpdir(), 'shardmesh-store-'))
    const missing = start(['--model', 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy', '--store', store])
    children.push(missing.child)
    await expect(missing.info).rejects.toThrow(/start exited [1-9]: shardmesh: NoProvidersError: manifest \(bafkrei\w+\) is not in the local store/)
  })
})
