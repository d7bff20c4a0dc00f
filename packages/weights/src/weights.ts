import { MemoryDatastore } from 'datastore-core'
import { CustomProgressEvent } from 'progress-events'
import { BlockAudit } from './audit.ts'
import { openCache } from './cache.ts'
import { BITSWAP_MESSAGE_SEND_TIMEOUT_MS, BLOCK_CONCURRENCY, DIAL_TIMEOUT_MS, MAX_MANIFEST_BYTES, PART_CONCURRENCY, STALL_TIMEOUT_MS } from './constants.ts'
import { InvalidManifestError, WeightsStateError } from './errors.ts'
import { fetchFile, readLocal } from './fetch-file.ts'
import { fetchParts } from './fetch-parts.ts'
import { isHeld } from './held.ts'
import { startHelia } from './helia.ts'
import { importModel } from './import.ts'
import { decodeManifest, parseCid } from './manifest.ts'
import { meshProviders, mergeProviders, parseProvider } from './providers.ts'
import { heldRanges, stageParts, stageTensors } from './stage.ts'
import { decodeTokenizer } from './tokenizer.ts'
import type { OpenedCache } from './cache.ts'
import type { FileFetchContext } from './fetch-file.ts'
import type { FetchPartsOptions, FetchPartsResult } from './fetch-parts.ts'
import type { ImportOptions, ImportResult } from './import.ts'
import type { FetchStageOptions, OpenManifestOptions, StageWeights, WeightsNode, WeightsNodeInit } from './index.ts'
import type { FetchProgressEvents, ManifestPartRef, ModelManifest, Provider, WeightsCounters } from './types.ts'
import type { Helia } from '@helia/interface'
import type { LayerRange, Mesh } from '@shardmesh/mesh'
import type { Checkpoint, TokenizerSpec } from '@shardmesh/model'
import type { CID } from 'multiformats/cid'

const newCounters = (): WeightsCounters => ({
  blocksFetched: 0,
  bytesFetched: 0,
  blocksCached: 0,
  filesFetched: 0,
  rejectedBlocks: 0,
  rejectedBytes: 0,
  rejectedByPeer: {},
  providerFailures: { dial: 0, missing: 0, stalled: 0, tampered: 0, error: 0 },
  distrusted: []
})

export class Weights implements WeightsNode {
  private readonly init: WeightsNodeInit
  private readonly mesh?: Pick<Mesh, 'members' | 'setLayers'>
  private readonly counts = newCounters()
  private readonly listeners = new Set<(evt: FetchProgressEvents) => void>()
  private ctx?: FileFetchContext
  private cache?: OpenedCache

  constructor (init: WeightsNodeInit) {
    this.init = init
    this.mesh = init.mesh ?? (init.libp2p?.services as { mesh?: Mesh } | undefined)?.mesh
  }

  get helia (): Helia { return this.context().helia }

  async start (): Promise<void> {
    if (this.ctx !== undefined) return
    const cache = this.init.blockstore !== undefined ? { blockstore: this.init.blockstore, close: async () => {} } : await openCache(this.init.cache)
    try {
      const { helia, received } = await startHelia({ libp2p: this.init.libp2p, blockstore: cache.blockstore, datastore: new MemoryDatastore(), bitswap: { messageSendTimeout: BITSWAP_MESSAGE_SEND_TIMEOUT_MS, ...this.init.bitswap } })
      const audit = new BlockAudit(this.counts, received, (provider, cid, bytes) => {
        for (const l of this.listeners) l(new CustomProgressEvent('weights:fetch:rejected-block', { provider, cid, bytes }))
      })
      this.cache = cache
      this.ctx = {
        helia,
        libp2p: this.init.libp2p,
        audit,
        counters: this.counts,
        blockConcurrency: this.init.blockConcurrency ?? BLOCK_CONCURRENCY,
        stallTimeoutMs: this.init.stallTimeoutMs ?? STALL_TIMEOUT_MS,
        dialTimeoutMs: this.init.dialTimeoutMs ?? DIAL_TIMEOUT_MS
      }
    } catch (err) {
      await cache.close()
      throw err
    }
  }

  async stop (): Promise<void> {
    const { ctx, cache } = this
    this.ctx = undefined
    this.cache = undefined
    if (ctx === undefined) return
    ctx.audit.close()
    try { await ctx.helia.stop() } finally { await cache?.close() }
  }

  private context (): FileFetchContext {
    if (this.ctx === undefined) throw new WeightsStateError('the weights node is not started (call start())')
    return this.ctx
  }

  async importModel (ckpt: Checkpoint, options?: ImportOptions): Promise<ImportResult> {
    return await importModel(this.context().helia, ckpt, options)
  }

  private self (): string { return this.init.libp2p?.peerId.toString() ?? '' }

  private providers (explicit: string[] | undefined, useMesh: boolean | undefined, part: string | 'any', manifest: ModelManifest | null, rotate: number): Provider[] {
    const fromMesh = this.mesh !== undefined && useMesh !== false ? meshProviders(this.mesh.members(), part, manifest?.config ?? null, this.self(), rotate) : []
    return mergeProviders((explicit ?? []).map(parseProvider), fromMesh)
  }

  private progress (options: { onProgress?: (evt: FetchProgressEvents) => void }): () => void {
    const l = options.onProgress
    if (l === undefined) return () => {}
    this.listeners.add(l)
    return () => { this.listeners.delete(l) }
  }

  async openManifest (cid: CID | string, options: OpenManifestOptions = {}): Promise<ModelManifest> {
    const ctx = this.context()
    const root = typeof cid === 'string' ? parseCid(cid, 'manifest CID') : cid
    const done = this.progress(options)
    try {
      const { bytes } = await fetchFile(ctx, { cid: root, label: 'manifest', maxBytes: MAX_MANIFEST_BYTES }, this.providers(options.providers, options.useMesh, 'any', null, 0), { signal: options.signal })
      ctx.counters.filesFetched++
      return decodeManifest(bytes, root.toString())
    } finally { done() }
  }

  async fetchTokenizer (manifest: ModelManifest, options: OpenManifestOptions = {}): Promise<TokenizerSpec | undefined> {
    const t = manifest.tokenizer
    if (t === null) return undefined
    const ctx = this.context()
    const done = this.progress(options)
    try {
      const { bytes } = await fetchFile(ctx, { cid: parseCid(t.cid, 'tokenizer CID'), label: 'tokenizer', byteLength: t.byteLength }, this.providers(options.providers, options.useMesh, 'any', manifest, 0), { signal: options.signal })
      ctx.counters.filesFetched++
      return decodeTokenizer(bytes, t.cid)
    } finally { done() }
  }

  private resolve (manifest: ModelManifest, parts: Array<string | ManifestPartRef>): ManifestPartRef[] {
    return parts.map(p => {
      const id = typeof p === 'string' ? p : p.id
      const part = manifest.parts.find(x => x.id === id)
      if (part === undefined) throw new InvalidManifestError(`part ${id} is not in the manifest of ${manifest.config.name}`)
      return part
    })
  }

  async fetchParts (manifest: ModelManifest, parts: Array<string | ManifestPartRef>, options: FetchPartsOptions = {}): Promise<FetchPartsResult> {
    const ctx = this.context()
    const refs = this.resolve(manifest, parts)
    const done = this.progress(options)
    try {
      return await fetchParts(ctx, manifest, refs, (part, i) => this.providers(options.providers, options.useMesh, part.id, manifest, i),
        { ...options, concurrency: options.concurrency ?? this.init.partConcurrency ?? PART_CONCURRENCY })
    } finally { done() }
  }

  async fetchStage (manifest: ModelManifest, layers: LayerRange, options: FetchStageOptions = {}): Promise<StageWeights> {
    const parts = stageParts(manifest, layers, options)
    const fetched = await this.fetchParts(manifest, parts, options)
    const tokenizer = options.tokenizer === false ? undefined : await this.fetchTokenizer(manifest, options)
    return {
      config: manifest.config,
      layers,
      embed: parts.some(p => p.id === 'embedding'),
      head: parts.some(p => p.id === 'head'),
      tensors: stageTensors(manifest, fetched.parts),
      tokenizer,
      fetched
    }
  }

  async readParts (manifest: ModelManifest, parts: Array<string | ManifestPartRef>, options: { signal?: AbortSignal } = {}): Promise<Map<string, Uint8Array>> {
    const { helia } = this.context()
    const out = new Map<string, Uint8Array>()
    for (const p of this.resolve(manifest, parts)) {
      out.set(p.id, await readLocal(helia, { cid: parseCid(p.cid, `part ${p.id}`), label: `part ${p.id}`, byteLength: p.byteLength }, options.signal))
    }
    return out
  }

  async held (manifest: ModelManifest, options: { signal?: AbortSignal } = {}): Promise<string[]> {
    const { helia } = this.context()
    const out: string[] = []
    for (const p of manifest.parts) {
      if (await isHeld(helia.blockstore, parseCid(p.cid, `part ${p.id}`), options.signal)) out.push(p.id)
    }
    return out
  }

  async announce (manifest: ModelManifest, options: { signal?: AbortSignal } = {}): Promise<LayerRange[]> {
    if (this.mesh === undefined) throw new WeightsStateError('announce needs a mesh: give `mesh`, or a libp2p node with the mesh service')
    const ranges = heldRanges(manifest, await this.held(manifest, options))
    this.mesh.setLayers(ranges)
    return ranges
  }

  counters (): WeightsCounters {
    return structuredClone(this.counts)
  }
}
