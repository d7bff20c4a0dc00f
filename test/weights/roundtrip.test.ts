// Import → fetch round trip over real libp2p + bitswap: a bootstrap imports a model and
// announces its layers; two peers find it through the mesh membership, each fetches only
// the parts of its stage (plus manifest and tokenizer), and the stages built from the
// fetched parts generate exactly the tokens of the original checkpoint.
import { describe, expect, it } from 'vitest'
import { evenRanges } from '@shardmesh/engine'
import { layerManifest, partBytes } from '@shardmesh/model'
import { stageParts } from '@shardmesh/weights'
import type { FetchProgressEvents } from '@shardmesh/weights'
import { loadSpec, peersStoppedAfterEach, sameBytes, tokensOf, waitForHolder } from './peers.ts'
import type { ModelSpec } from './peers.ts'

const peer = peersStoppedAfterEach()

const models: Array<[string, ModelSpec]> = [
  ['stories260K (llama2.c .bin)', { kind: 'stories260K' }],
  ['synthetic tiny-gqa4-untied, Q8_0', { kind: 'synthetic', preset: 'tiny-gqa4-untied', quant: 'Q8_0' }]
]

describe.each(models)('%s: import on the bootstrap, fetch per stage on two peers', (_name, spec) => {
  it('fetches only each stage\'s parts from the holder and generates the original file\'s tokens', async () => {
    const ckpt = await loadSpec(spec)
    const boot = await peer({ role: 'bootstrap' })
    const { cid, manifest } = await boot.weights.importModel(ckpt)
    expect(await boot.weights.announce(manifest)).toEqual([[0, ckpt.config.nLayers]])
    const ranges = evenRanges(ckpt.config.nLayers, 2)
    const fetchers = await Promise.all(ranges.map(async () => await peer({ bootstrap: [boot.addr] })))
    await Promise.all(fetchers.map(async f => { await waitForHolder(f, boot.id) }))

    const stages = await Promise.all(fetchers.map(async (f, i) => {
      const events: FetchProgressEvents[] = []
      // no providers given: the manifest and the parts are found through the membership
      const opened = await f.weights.openManifest(cid.toString())
      expect(opened).toEqual(manifest)
      const stage = await f.weights.fetchStage(opened, ranges[i], { onProgress: e => events.push(e) })
      const wanted = stageParts(manifest, ranges[i]).map(p => p.id)
      expect([...stage.fetched.parts.keys()].sort()).toEqual([...wanted].sort())
      expect(Object.values(stage.fetched.sources)).toEqual(wanted.map(() => boot.id))
      // only those parts reached the peer's store
      expect((await f.weights.held(manifest)).sort()).toEqual([...wanted].sort())
      const bytes = events.filter(e => e.type === 'weights:fetch:bytes').reduce((a, e) => a + (e.detail as { bytes: number }).bytes, 0)
      const partsDone = events.filter(e => e.type === 'weights:fetch:part').map(e => e.detail as { part: string, source: string })
      expect(bytes).toBe(stage.fetched.bytes)
      expect(partsDone.map(d => d.part).sort()).toEqual([...wanted].sort())
      expect(partsDone.every(d => d.source === boot.id)).toBe(true)
      // the parts are the original bytes
      for (const part of layerManifest(ckpt).parts.filter(p => wanted.includes(p.id))) {
        expect(sameBytes(stage.fetched.parts.get(part.id), partBytes(ckpt, part)), part.id).toBe(true)
      }
      expect(f.weights.counters()).toMatchObject({ rejectedBlocks: 0, bytesFetched: expect.any(Number) })
      return stage
    }))

    expect(stages[0].tokenizer?.pieces).toEqual(ckpt.tokenizer!.pieces)
    const original = ranges.map(layers => ({ config: ckpt.config, layers, tensors: ckpt.tensors }))
    for (const sampling of [{ temperature: 0 }, { temperature: 0.9, seed: 7 }]) {
      const expected = await tokensOf(original, ckpt.tokenizer!, 'Once upon a time', sampling)
      expect(expected.length).toBeGreaterThan(0)
      expect(await tokensOf(stages, stages[0].tokenizer!, 'Once upon a time', sampling)).toEqual(expected)
    }
  })
})

describe('fetch control', () => {
  it('aborts on the caller\'s signal with FetchAbortedError, and a later fetch reuses the cached blocks', async () => {
    // parts of ~13 MB (1 MiB blocks), so an abort lands mid-part
    const ckpt = await loadSpec({ kind: 'synthetic', dim: 512, hiddenDim: 1536, nLayers: 2, nHeads: 8, nKvHeads: 4, vocabSize: 1024 })
    const boot = await peer({ role: 'bootstrap' })
    const { manifest } = await boot.weights.importModel(ckpt)
    const f = await peer({ bootstrap: [boot.addr] })
    const controller = new AbortController()
    const aborted = await f.weights.fetchParts(manifest, ['layer.0', 'layer.1'], {
      providers: [boot.addr],
      concurrency: 1,
      signal: controller.signal,
      onProgress: e => { if (e.type === 'weights:fetch:bytes') controller.abort(new Error('user cancelled')) }
    }).then(() => undefined, (e: Error) => e)
    expect(aborted?.name).toBe('FetchAbortedError')
    expect((aborted?.cause as Error).message).toBe('user cancelled')
    expect(await f.weights.held(manifest)).not.toContain('layer.1')

    const before = f.weights.counters()
    expect(before.blocksFetched).toBeGreaterThan(0)
    const result = await f.weights.fetchParts(manifest, ['layer.0', 'layer.1'], { providers: [boot.addr] })
    for (const part of layerManifest(ckpt).parts.filter(p => p.id.startsWith('layer.'))) expect(sameBytes(result.parts.get(part.id), partBytes(ckpt, part)), part.id).toBe(true)
    expect(f.weights.counters().blocksCached).toBeGreaterThan(0)
    expect(result.networkBytes).toBeLessThan(result.bytes)
  })

  it('names every provider that lacks an unknown CID', async () => {
    const boot = await peer({ role: 'bootstrap' })
    const { manifest } = await boot.weights.importModel(await loadSpec({ kind: 'synthetic', preset: 'tiny-gqa2' }))
    await boot.weights.announce(manifest)
    const f = await peer({ bootstrap: [boot.addr] })
    await waitForHolder(f, boot.id)
    const err = await f.weights.openManifest('bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy').then(() => undefined, (e: Error & { attempts?: unknown }) => e)
    expect(err?.name).toBe('ContentUnavailableError')
    expect(err?.attempts).toEqual([{ provider: boot.id, reason: 'missing', message: expect.any(String) }])
    expect(f.weights.counters().providerFailures.missing).toBe(1)
  })
})
