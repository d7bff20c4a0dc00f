import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { unixfs } from '@helia/unixfs'
import { afterEach, describe, expect, it } from 'vitest'
import { layerManifest, partBytes, quantizeCheckpoint, syntheticModel, SYNTHETIC_PRESETS } from '@shardmesh/model'
import { parseCid, weightsNode } from '../src/index.ts'
import type { WeightsNode } from '../src/index.ts'

const nodes: WeightsNode[] = []
const dirs: string[] = []
afterEach(async () => {
  await Promise.all(nodes.splice(0).map(async n => { await n.stop() }))
  await Promise.all(dirs.splice(0).map(async d => { await rm(d, { recursive: true, force: true }) }))
})

async function started (init: Parameters<typeof weightsNode>[0] = {}): Promise<WeightsNode> {
  const n = weightsNode(init)
  nodes.push(n)
  await n.start()
  return n
}

async function expectError (p: Promise<unknown>, name: string, message: RegExp): Promise<void> {
  const err = await p.then(() => undefined, (e: Error) => e)
  expect(err?.name).toBe(name)
  expect(err?.message).toMatch(message)
}

describe('importing into a local store (no network)', () => {
  it('writes each part in its stored dtype, deterministically, and reads back partBytes exactly', async () => {
    const ckpt = quantizeCheckpoint(syntheticModel(SYNTHETIC_PRESETS['tiny-gqa4-untied']), 'Q4_0')
    const a = await started()
    const b = await started()
    const first = await a.importModel(ckpt)
    const second = await b.importModel(ckpt)
    expect(second.cid.toString()).toBe(first.cid.toString())
    expect(second.manifest).toEqual(first.manifest)
    const dtypes = new Set(first.manifest.parts.flatMap(p => p.tensors.map(t => t.dtype)))
    expect(dtypes).toEqual(new Set(['Q4_0', 'F32']))
    const parts = await a.readParts(first.manifest, first.manifest.parts.map(p => p.id))
    for (const part of layerManifest(ckpt).parts) expect(parts.get(part.id), part.id).toEqual(partBytes(ckpt, part))
    expect(await a.held(first.manifest)).toEqual(first.manifest.parts.map(p => p.id))
  })

  it('reports import progress per part, then the manifest', async () => {
    const ckpt = syntheticModel(SYNTHETIC_PRESETS['tiny-gqa2'])
    const events: Array<{ type: string, detail: any }> = []
    const { cid, manifest } = await (await started()).importModel(ckpt, { onProgress: e => events.push(e) })
    expect(events.map(e => e.type)).toEqual([...manifest.parts.map(() => 'weights:import:part'), 'weights:import:manifest'])
    expect(events.at(-2)?.detail).toMatchObject({ part: 'head', doneBytes: manifest.byteLength, totalBytes: manifest.byteLength, partsDone: 5, partsTotal: 5 })
    expect(events.at(-1)?.detail.cid).toBe(cid.toString())
  })

  it('keeps blocks in a blockstore-fs cache across restarts; a missing block makes the part not held', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'shardmesh-weights-'))
    dirs.push(dir)
    const ckpt = syntheticModel(SYNTHETIC_PRESETS['tiny-mha-odd'])
    const first = await started({ cache: dir })
    const { cid } = await first.importModel(ckpt)
    await first.stop()
    const again = await started({ cache: dir })
    const manifest = await again.openManifest(cid.toString())
    expect(manifest.config).toEqual(ckpt.config)
    expect((await again.fetchTokenizer(manifest))?.pieces).toEqual(ckpt.tokenizer!.pieces)
    const layer = manifest.parts[1]
    await again.helia.blockstore.delete(parseCid(layer.cid))
    expect(await again.held(manifest)).toEqual(manifest.parts.filter(p => p !== layer).map(p => p.id))
    await expectError(again.readParts(manifest, [layer.id]), 'PartNotHeldError', /part layer\.0 .* is not \(completely\) in the local store/)
    // no libp2p node: nowhere to fetch it from
    await expectError(again.fetchParts(manifest, [layer.id]), 'NoProvidersError', /no network/)
  })
})

describe('bad input', () => {
  it('names an unknown CID, a string that is no CID, and a file that is no manifest', async () => {
    const n = await started()
    await expectError(n.openManifest('bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'), 'NoProvidersError', /manifest \(bafkrei.*\) is not in the local store/)
    await expectError(n.openManifest('hello'), 'InvalidCidError', /manifest CID "hello" is not a CID/)
    const other = await unixfs(n.helia).addBytes(new TextEncoder().encode('{"format":"something-else"}'))
    await expectError(n.openManifest(other), 'InvalidManifestError', /format must be "shardmesh-model"/)
    const { manifest } = await n.importModel(syntheticModel(SYNTHETIC_PRESETS['tiny-gqa2']))
    await expectError(n.fetchParts(manifest, ['layer.7']), 'InvalidManifestError', /part layer\.7 is not in the manifest/)
    await expectError(n.fetchParts(manifest, ['layer.0'], { providers: ['not a peer'] }), 'InvalidProviderError', /neither a peer id nor a multiaddr/)
    await expectError(n.announce(manifest), 'WeightsStateError', /announce needs a mesh/)
  })

  it('refuses to work before start and after stop', async () => {
    const n = weightsNode()
    await expectError(n.importModel(syntheticModel()), 'WeightsStateError', /not started/)
    await n.start()
    await n.stop()
    await expectError(n.openManifest('bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'), 'WeightsStateError', /not started/)
  })
})
