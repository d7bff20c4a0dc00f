import { Weights } from './weights.ts'
import type { FetchPartsOptions, FetchPartsResult } from './fetch-parts.ts'
import type { ImportOptions, ImportResult } from './import.ts'
import type { ManifestPartRef, ModelManifest, WeightsCounters } from './types.ts'
import type { BitswapOptions } from '@helia/bitswap'
import type { Helia } from '@helia/interface'
import type { Libp2p } from '@libp2p/interface'
import type { LayerRange, Mesh } from '@shardmesh/mesh'
import type { Checkpoint, ModelConfig, Tensor, TokenizerSpec } from '@shardmesh/model'
import type { Blockstore } from 'interface-blockstore'
import type { CID } from 'multiformats/cid'

export type { FetchProgressEvents, ImportProgressEvents, ManifestPartRef, ModelManifest, Provider, WeightsCounters } from './types.ts'
export type { FetchPartsOptions, FetchPartsResult } from './fetch-parts.ts'
export type { ImportOptions, ImportResult } from './import.ts'
export type { FailureReason } from './errors.ts'
export { ContentUnavailableError, FetchAbortedError, InvalidCidError, InvalidManifestError, InvalidProviderError, NoProvidersError, PartNotHeldError, ProviderStalledError, TamperedBlockError, WeightsStateError } from './errors.ts'
export { decodeManifest, encodeManifest, parseCid } from './manifest.ts'
export { decodeTokenizer, encodeTokenizer } from './tokenizer.ts'
export { heldRanges, stageParts, stageTensors } from './stage.ts'
export { holdsPart, meshProviders } from './providers.ts'
export { importModel } from './import.ts'
export { IMPORT_PROFILE } from './constants.ts'

/** Options of `weightsNode`; every field is optional. */
export interface WeightsNodeInit {
  /**
   * The peer's libp2p node (`createMeshPeer`): Helia's bitswap runs on it — one node per peer.
   * @default none: a local store only (import, read back), no fetching
   */
  libp2p?: Libp2p
  /** Where holders are found and held layers announced. @default `libp2p.services.mesh` when present */
  mesh?: Pick<Mesh, 'members' | 'setLayers'>
  /** Node: a blockstore-fs directory; browser: an IndexedDB database name. @default blocks in memory */
  cache?: string
  /** Use this blockstore (wins over `cache`); the caller opens and closes it. */
  blockstore?: Blockstore
  /** Blocks of one part requested at once. @default 8 */
  blockConcurrency?: number
  /** Parts fetched at once. @default 4 */
  partConcurrency?: number
  /** Move to the next provider after this long without a block. @default 15000 */
  stallTimeoutMs?: number
  /** Give up dialing a provider after this long. @default 5000 */
  dialTimeoutMs?: number
  /** @helia/bitswap options. @default bitswap's, with `messageSendTimeout` 60000 (constants.ts) */
  bitswap?: BitswapOptions
}

export interface OpenManifestOptions {
  /** Peers to ask first: peer ids or multiaddrs ending in `/p2p/<peer id>`. @default [] */
  providers?: string[]
  /** Also ask mesh members that announce layers. @default true */
  useMesh?: boolean
  signal?: AbortSignal
  onProgress?: FetchPartsOptions['onProgress']
}

export interface FetchStageOptions extends FetchPartsOptions {
  /** Fetch the embedding. @default layers[0] === 0 */
  embed?: boolean
  /** Fetch the head (and, tied, the embedding). @default layers[1] === nLayers */
  head?: boolean
  /** Also fetch the tokenizer. @default true */
  tokenizer?: boolean
}

/** A stage's weights, ready for `backend.createStage({ config, layers, embed, head, tensors })`. */
export interface StageWeights {
  config: ModelConfig
  layers: LayerRange
  embed: boolean
  head: boolean
  /** Zero-copy views into the fetched parts (the engine's `TensorSource`). */
  tensors: Map<string, Tensor>
  tokenizer?: TokenizerSpec
  fetched: FetchPartsResult
}

/** A peer's model store on IPFS: Helia on the peer's libp2p node, with a block cache. */
export interface WeightsNode {
  /** The Helia node (after `start`). */
  readonly helia: Helia
  start: () => Promise<void>
  /** Stops Helia (bitswap leaves the libp2p node, which keeps running) and closes the cache. */
  stop: () => Promise<void>
  /** Import a checkpoint per part; its blocks are provided to peers from then on. */
  importModel: (ckpt: Checkpoint, options?: ImportOptions) => Promise<ImportResult>
  /** The manifest from the store, or fetched from `providers` / mesh members; checked field by field. */
  openManifest: (cid: CID | string, options?: OpenManifestOptions) => Promise<ModelManifest>
  /** The tokenizer the manifest names (store first), or undefined when the model has none. */
  fetchTokenizer: (manifest: ModelManifest, options?: OpenManifestOptions) => Promise<TokenizerSpec | undefined>
  /** Parts (ids or refs) from the store or their holders, verified by CID and cached. */
  fetchParts: (manifest: ModelManifest, parts: Array<string | ManifestPartRef>, options?: FetchPartsOptions) => Promise<FetchPartsResult>
  /** Fetch what a stage serving `layers` needs (and the tokenizer) and build its tensors. */
  fetchStage: (manifest: ModelManifest, layers: LayerRange, options?: FetchStageOptions) => Promise<StageWeights>
  /** Parts from the local store only (PartNotHeldError when incomplete). */
  readParts: (manifest: ModelManifest, parts: Array<string | ManifestPartRef>, options?: { signal?: AbortSignal }) => Promise<Map<string, Uint8Array>>
  /** Ids of the parts whose every block is in the store. */
  held: (manifest: ModelManifest, options?: { signal?: AbortSignal }) => Promise<string[]>
  /** Announce the held layer ranges in the membership heartbeat (`mesh.setLayers`); returns them. */
  announce: (manifest: ModelManifest, options?: { signal?: AbortSignal }) => Promise<LayerRange[]>
  counters: () => WeightsCounters
}

/** A weights node; call `start()` before use and `stop()` before stopping the libp2p node. */
export function weightsNode (init: WeightsNodeInit = {}): WeightsNode {
  return new Weights(init)
}
