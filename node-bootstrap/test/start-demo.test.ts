// `shardmesh start --demo` (what `scripts/start.sh` runs): a mesh of the bootstrap and two
// local peers serves stories260K and streams one completion through the pipeline, printed
// as it arrives: the golden continuation, then the node keeps serving.
import { spawn } from 'node:child_process'
import { mkdtemp, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { createTokenizer } from '@shardmesh/model'
import { loadModel } from '@shardmesh/model/node'
import { repoRoot, storiesDir } from '../../test/fixtures.ts'
import { waitFor } from './helpers.ts'

const cli = resolve(repoRoot, 'node-bootstrap/src/cli.ts')
const gguf = join(storiesDir(), 'stories260K.gguf')
const golden = JSON.parse(await readFile(join(storiesDir(), 'golden.json'), 'utf8')) as { cases: Array<{ tag: string, prompt: string, generated_tokens: number[] }> }
const once = golden.cases.find(c => c.tag === 'main' && c.prompt === 'Once upon a time')!
const tokenizer = createTokenizer((await loadModel(gguf)).tokenizer!)
const N = 24

describe('shardmesh start --demo', () => {
  const store = mkdtemp(join(tmpdir(), 'shardmesh-demo-'))
  const child = (async () => spawn(process.execPath, [cli, 'start', '--model', gguf, '--local-peers', '2', '--ft-level', 'low', '--port', '0', '--store', await store, '--db', 'none', '--demo', once.prompt, '--demo-tokens', String(N)], { stdio: ['pipe', 'pipe', 'pipe'] }))()
  afterAll(async () => {
    const c = await child
    c.kill('SIGTERM')
    await new Promise(resolve => { if (c.exitCode !== null) resolve(undefined); else c.once('exit', resolve) })
  }, 30_000)

  it('prints the peer page URL and streams the golden continuation through the mesh', async () => {
    const c = await child
    let out = ''
    let err = ''
    c.stdout!.on('data', (d: Buffer) => { out += d.toString() })
    c.stderr!.on('data', (d: Buffer) => { err += d.toString() })
    const line = await waitFor('the demo line', async () => {
      if (c.exitCode !== null) throw new Error(`start exited ${c.exitCode}: ${err}`)
      const l = out.split('\n').find(x => x.startsWith('Demo '))
      return l !== undefined && out.endsWith('\n') && out.lastIndexOf('\n') > out.indexOf('Demo ') ? l : undefined
    }, 120_000).catch(e => { throw new Error(`${(e as Error).message}\nstdout:\n${out}\nstderr:\n${err}`) })
    expect(out).toMatch(/^Peer page: http:\/\/127\.0\.0\.1:\d+\/$/m)
    expect(out).toMatch(/^Dashboard: http:\/\//m)
    expect(out.match(/^ {2}local peer /gm)).toHaveLength(2)
    const text = tokenizer.decode(once.generated_tokens.slice(0, N), { prev: tokenizer.encode(once.prompt).at(-1) })
    expect(line).toBe(`Demo (temperature 0, ${N} tokens through the mesh): ${once.prompt}${text}`)
    expect(c.exitCode).toBeNull() // and it goes on serving
  }, 150_000)
})
