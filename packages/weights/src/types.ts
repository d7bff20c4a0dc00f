import type { FailureReason } from './errors.ts'
import type { ManifestPart, ModelConfig } from '@shardmesh/model'
import type { ProgressEvent } from 'progress-events'

/** A part of the layer manifest (`embedding`, `layer.N`, `head`) with the CID of its UnixFS file. */
export interface ManifestPartRef extends ManifestPart {
  /** CIDv1 of the UnixFS file holding `partBytes(ckpt, part)`: the tensors in their stored dtype. */
  cid: string
}

/**
 * What `shardmesh import` writes (as a JSON UnixFS file); its CID names the model. A superset
 * of `LayerManifest`, so `partsForStage`/`partTensors` from @shardmesh/model apply to it.
 */
export interface ModelManifest {
  format: 'shardmesh-model'
  version: 1
  /** The normalized config (@shardmesh/model `ModelConfig`). */
  config: ModelConfig
  parts: ManifestPartRef[]
  /** The tokenizer's JSON UnixFS file, or null when the checkpoint carries none. */
  tokenizer: { cid: string, byteLength: number } | null
  /** Sum of the parts' byte lengths. */
  byteLength: number
}

/** A peer that may hold content: its id and, when known, addresses to dial. */
export interface Provider {
  peerId: string
  addrs: string[]
  /** `bootstrap` providers are asked last (the bootstrap is only the first provider). */
  role?: 'peer' | 'bootstrap'
}

/** Counters of one weights node (monotonic over its life). */
export interface WeightsCounters {
  /** Verified blocks and their bytes received from peers. */
  blocksFetched: number
  bytesFetched: number
  /** Blocks a fetch found already in the local store. */
  blocksCached: number
  /** Files (parts, manifests, tokenizers) completed by fetches, from the network or the store. */
  filesFetched: number
  /**
   * Blocks received whose hash matches no block this node asked for: tampered (or unsolicited).
   * They are dropped before the store; the sender is distrusted.
   */
  rejectedBlocks: number
  rejectedBytes: number
  rejectedByPeer: Record<string, number>
  /** Failed attempts to fetch a file from one provider, by reason. */
  providerFailures: Record<FailureReason, number>
  /** Peers that sent tampered blocks; fetches skip them from then on. */
  distrusted: string[]
}

export type ImportProgressEvents =
  | ProgressEvent<'weights:import:part', { part: string, cid: string, bytes: number, doneBytes: number, totalBytes: number, partsDone: number, partsTotal: number }>
  | ProgressEvent<'weights:import:manifest', { cid: string, byteLength: number }>

export type FetchProgressEvents =
  | ProgressEvent<'weights:fetch:start', { parts: string[], totalBytes: number }>
  /** Bytes of a part arrived (from `provider`, or `local` for the store). */
  | ProgressEvent<'weights:fetch:bytes', { part: string, provider: string, bytes: number, receivedBytes: number, totalBytes: number }>
  | ProgressEvent<'weights:fetch:part', { part: string, cid: string, source: string, bytes: number, partsDone: number, partsTotal: number }>
  | ProgressEvent<'weights:fetch:provider-failed', { part: string, provider: string, reason: FailureReason, message: string }>
  | ProgressEvent<'weights:fetch:rejected-block', { provider: string, cid: string, bytes: number }>
