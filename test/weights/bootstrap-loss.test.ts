// The bootstrap is only the first provider: it imports the model in its own process; peer A
// fetches every layer from it and announces them; the bootstrap is SIGKILLed; peer B, which
// joins through A, opens the manifest and fetches its stage from A alone.
import { afterEach, describe, expect, it } from 'vitest'
import { stageParts } from '@shardmesh/weights'
import { loadSpec, startPeer, tokensOf, waitFor, waitForHolder } from './peers.ts'
import type { WeightsPeer } from './peers.ts'
import { startProvider } from './provider.ts'
import type { ProviderHandle } from './provider.ts'

let boot: ProviderHandle | undefined
const peers: WeightsPeer[] = []
afterEach(async () => {
  await boot?.kill()
  boot = undefined
  await Promise.allSettled(peers.splice(0).map(async p => { await p.stop() }))
})

describe('after the bootstrap that imported the model is killed', () => {
  it('a new peer fetches its layers from the peer that fetched them first', async () => {
    const ckpt = await loadSpec({ kind: 'stories260K' })
    boot = await startProvider({ model: { kind: 'stories260K' } })
    const bootAddr = boot.addrs.find(a => a.includes('/tcp/') && !a.includes('/ws'))!
    const a = await startPeer({ bootstrap: [bootAddr] })
    peers.push(a)
    await waitForHolder(a, boot.peerId)
    const manifest = await a.weights.openManifest(boot.cid)
    const whole = await a.weights.fetchStage(manifest, [0, manifest.config.nLayers])
    expect(new Set(Object.values(whole.fetched.sources))).toEqual(new Set([boot.peerId]))
    expect(await a.weights.announce(manifest)).toEqual([[0, manifest.config.nLayers]])

    await boot.kill()
    expect(boot.child.signalCode).toBe('SIGKILL')
    await waitFor('A to see the bootstrap gone', () => a.node.services.mesh.members().find(m => m.peerId === boot!.peerId)?.status !== 'alive')

    const b = await startPeer({ bootstrap: [a.addr] })
    peers.push(b)
    await waitForHolder(b, a.id)
    const opened = await b.weights.openManifest(boot.cid)
    expect(opened).toEqual(manifest)
    const range: [number, number] = [2, manifest.config.nLayers]
    const stage = await b.weights.fetchStage(opened, range)
    expect(Object.keys(stage.fetched.sources).sort()).toEqual(stageParts(manifest, range).map(p => p.id).sort())
    expect(new Set(Object.values(stage.fetched.sources))).toEqual(new Set([a.id]))
    expect(b.weights.counters().providerFailures).toEqual({ dial: 0, missing: 0, stalled: 0, tampered: 0, error: 0 })

    // B's stage continues A's first two layers exactly as the original file does
    const first = { config: manifest.config, layers: [0, 2] as [number, number], tensors: whole.tensors }
    const expected = await tokensOf([{ config: ckpt.config, layers: [0, ckpt.config.nLayers], tensors: ckpt.tensors }], ckpt.tokenizer!, 'The dog')
    expect(await tokensOf([first, stage], stage.tokenizer!, 'The dog')).toEqual(expected)
  })
})
