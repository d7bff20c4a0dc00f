// A real peer that lies: it announces the layers in the mesh and serves them over bitswap,
// but its blockstore flips a byte of every block it reads. The fetcher asks it first (a peer
// before the bootstrap), bitswap's hash check drops its blocks, the audit counts them and
// distrusts it, and every part comes from the honest bootstrap; the stage built from the
// fetched parts gives the original tokens.
import { describe, expect, it } from 'vitest'
import { evenRanges } from '@shardmesh/engine'
import { layerManifest, partBytes } from '@shardmesh/model'
import type { FetchProgressEvents } from '@shardmesh/weights'
import { LyingBlockstore, loadSpec, peersStoppedAfterEach, sameBytes, tokensOf, waitForHolder } from './peers.ts'

const peer = peersStoppedAfterEach()

describe('a peer serving tampered blocks', () => {
  it('is rejected by hash, counted and distrusted; the parts come from an honest provider', async () => {
    const ckpt = await loadSpec({ kind: 'synthetic', preset: 'tiny-gqa4-untied', dim: 256, hiddenDim: 768, quant: 'Q8_0' })
    const honest = await peer({ role: 'bootstrap' })
    const lies = new LyingBlockstore()
    const liar = await peer({ bootstrap: [honest.addr], blockstore: lies })
    const { manifest } = await honest.weights.importModel(ckpt)
    await liar.weights.importModel(ckpt)
    await honest.weights.announce(manifest)
    await liar.weights.announce(manifest)
    const fetcher = await peer({ bootstrap: [honest.addr] })
    await waitForHolder(fetcher, honest.id)
    await waitForHolder(fetcher, liar.id)

    const events: FetchProgressEvents[] = []
    const ids = manifest.parts.map(p => p.id)
    // no explicit providers: the mesh orders the liar (a peer) before the bootstrap for every part
    const result = await fetcher.weights.fetchParts(manifest, ids, { onProgress: e => events.push(e) })

    expect(lies.lies).toBeGreaterThan(0)
    const counters = fetcher.weights.counters()
    expect(counters.rejectedBlocks).toBeGreaterThan(0)
    expect(counters.rejectedByPeer).toEqual({ [liar.id]: counters.rejectedBlocks })
    expect(counters.distrusted).toEqual([liar.id])
    expect(counters.providerFailures.tampered).toBeGreaterThan(0)
    expect(events.some(e => e.type === 'weights:fetch:rejected-block' && (e.detail as { provider: string }).provider === liar.id)).toBe(true)
    expect(events.filter(e => e.type === 'weights:fetch:provider-failed').every(e => (e.detail as { provider: string, reason: string }).provider === liar.id && (e.detail as { reason: string }).reason === 'tampered')).toBe(true)
    expect(Object.values(result.sources)).toEqual(ids.map(() => honest.id))

    // nothing corrupt reached the store or the engine
    for (const part of layerManifest(ckpt).parts) {
      expect(sameBytes(result.parts.get(part.id), partBytes(ckpt, part)), part.id).toBe(true)
    }
    const stored = await fetcher.weights.readParts(manifest, ids)
    for (const part of layerManifest(ckpt).parts) expect(sameBytes(stored.get(part.id), partBytes(ckpt, part)), `stored ${part.id}`).toBe(true)
    const ranges = evenRanges(ckpt.config.nLayers, 2)
    const fetchedStages = await Promise.all(ranges.map(async layers => await fetcher.weights.fetchStage(manifest, layers)))
    const original = ranges.map(layers => ({ config: ckpt.config, layers, tensors: ckpt.tensors }))
    expect(await tokensOf(fetchedStages, fetchedStages[0].tokenizer!, 'Once upon a time')).toEqual(await tokensOf(original, ckpt.tokenizer!, 'Once upon a time'))

    // the distrusted peer is not asked again, even when named explicitly
    const other = await loadSpec({ kind: 'synthetic', preset: 'tiny-mha-odd' })
    const second = await liar.weights.importModel(other)
    const err = await fetcher.weights.fetchParts(second.manifest, ['layer.0'], { providers: [liar.addr], useMesh: false }).then(() => undefined, (e: Error) => e)
    expect(err?.name).toBe('NoProvidersError')
    expect(err?.message).toMatch(/distrusted/)
    expect(fetcher.weights.counters().providerFailures.tampered).toBe(counters.providerFailures.tampered)
  })

  it('fails with ContentUnavailableError naming the liar when it is the only provider', async () => {
    const ckpt = await loadSpec({ kind: 'synthetic', preset: 'tiny-gqa2' })
    const liar = await peer({ role: 'bootstrap', blockstore: new LyingBlockstore() })
    const { manifest } = await liar.weights.importModel(ckpt)
    const fetcher = await peer({ bootstrap: [liar.addr] })
    const err = await fetcher.weights.fetchParts(manifest, ['layer.0'], { providers: [liar.addr] }).then(() => undefined, (e: Error & { attempts?: unknown }) => e)
    expect(err?.name).toBe('ContentUnavailableError')
    expect(err?.attempts).toEqual([{ provider: liar.id, reason: 'tampered', message: expect.stringMatching(/matches no requested block/) }])
    expect(await fetcher.weights.held(manifest)).toEqual([])
  })
})
