import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { layerManifest, partBytes, syntheticModel, writeGguf } from '@shardmesh/model'
import { loadModel } from '@shardmesh/model/node'
import { weightsNode } from '@shardmesh/weights'
import { storiesDir } from '../../test/fixtures.ts'
import { shardmesh } from './run-cli.ts'



const dir = storiesDir()
const tmp: string[] = []
afterEach(async () => { await Promise.all(tmp.splice(0).map(async d => { await rm(d, { recursive: true, force: true }) })) })
async function tempDir (): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'shardmesh-import-'))
  tmp.push(d)
  return d
}

describe('shardmesh import', () => {
  it('writes every part and the manifest into the store and prints the manifest CID', async () => {
    const store = await tempDir()
    const r = await shardmesh(['import', join(dir, 'stories260K.bin'), '--tokenizer', join(dir, 'tok512.bin'), '--store', store, '--json'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const out = JSON.parse(r.stdout)
    expect(out).toMatchObject({ model: expect.any(String), parts: 7, dtypes: ['F32'], store })

    // the store holds what the CLI printed: open it as a peer would
    const ckpt = await loadModel(join(dir, 'stories260K.bin'), { tokenizerPath: join(dir, 'tok512.bin') })
    const weights = weightsNode({ cache: store })
    await weights.start()
    try {
      const manifest = await weights.openManifest(out.cid)
      expect(manifest.config).toEqual(ckpt.config)
      expect(manifest.byteLength).toBe(out.bytes)
      const parts = await weights.readParts(manifest, manifest.parts.map(p => p.id))
      for (const part of layerManifest(ckpt).parts) expect(parts.get(part.id), part.id).toEqual(partBytes(ckpt, part))
      expect((await weights.fetchTokenizer(manifest))?.pieces).toEqual(ckpt.tokenizer!.pieces)
    } finally {
      await weights.stop()
    }

    // text mode: only the CID on stdout (scriptable), the summary on stderr; the same model gives the same CID
    const again = await shardmesh(['import', '--model', join(dir, 'stories260K.bin'), '--tokenizer', join(dir, 'tok512.bin')], { SHARDMESH_STORE: store })
    expect(again.code).toBe(0)
    expect(again.stdout).toBe(`${out.cid as string}\n`)
    expect(again.stderr).toMatch(/7 parts \(embedding, 5 layers, head\)/)
  })

  it('keeps quantized tensors quantized (a Q4_0 GGUF)', async () => {
    const work = await tempDir()
    const file = join(work, 'tiny-q4.gguf')
    await writeFile(file, writeGguf(syntheticModel({ dim: 64, hiddenDim: 128 }), { matrixType: 'Q4_0' }))
    const r = await shardmesh(['import', file, '--store', join(work, 'store'), '--json'])
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout).dtypes.sort()).toEqual(['F32', 'Q4_0'])
  })

  it('explains usage mistakes and unreadable models', async () => {
    const help = await shardmesh(['import', '--help'])
    expect(help.code).toBe(0)
    expect(help.stdout).toMatch(/shardmesh import MODEL/)
    expect(help.stdout).toMatch(/--store/)
    const none = await shardmesh(['import'])
    expect(none.code).toBe(2)
    expect(none.stderr).toMatch(/a model is required/)
    const two = await shardmesh(['import', 'a.gguf', 'b.gguf'])
    expect(two.code).toBe(2)
    expect(two.stderr).toMatch(/one model expected, got 2/)
    const missing = await shardmesh(['import', join(await tempDir(), 'nope.gguf'), '--store', await tempDir()])
    expect(missing.code).toBe(1)
    expect(missing.stderr).toMatch(/nope\.gguf/)
  })
})
