import { unixfs } from '@helia/unixfs'
import { layerManifest, partBytes } from '@shardmesh/model'
import { CustomProgressEvent } from 'progress-events'
import { IMPORT_PROFILE, MANIFEST_FORMAT, MANIFEST_VERSION } from './constants.ts'
import { encodeManifest } from './manifest.ts'
import { encodeTokenizer } from './tokenizer.ts'
import type { ImportProgressEvents, ManifestPartRef, ModelManifest } from './types.ts'
import type { Helia } from '@helia/interface'
import type { Checkpoint } from '@shardmesh/model'
import type { CID } from 'multiformats/cid'
import type { ProgressOptions } from 'progress-events'

export interface ImportOptions extends ProgressOptions<ImportProgressEvents> {
  signal?: AbortSignal
}

export interface ImportResult {
  /** The manifest's CID: the model's name on the mesh. */
  cid: CID
  manifest: ModelManifest
}

/**
 * Write a checkpoint as UnixFS files: the embedding, each layer and the head (each the bytes
 * of `partBytes`, tensors in their stored dtype: quantized stays quantized), the tokenizer,
 * and the manifest naming them all. Deterministic: the same checkpoint gives the same CIDs.
 * One part's bytes are in memory at a time (beside the checkpoint).
 */
export async function importModel (helia: Pick<Helia, 'blockstore'>, ckpt: Checkpoint, options: ImportOptions = {}): Promise<ImportResult> {
  const { signal, onProgress } = options
  const layers = layerManifest(ckpt)
  const fs = unixfs(helia)
  const add = async (bytes: Uint8Array): Promise<CID> => await fs.addBytes(bytes, { profile: IMPORT_PROFILE, signal })
  const totalBytes = layers.parts.reduce((a, p) => a + p.byteLength, 0)
  const parts: ManifestPartRef[] = []
  let doneBytes = 0
  for (const part of layers.parts) {
    signal?.throwIfAborted()
    const cid = await add(partBytes(ckpt, part))
    parts.push({ ...part, cid: cid.toString() })
    doneBytes += part.byteLength
    onProgress?.(new CustomProgressEvent('weights:import:part', { part: part.id, cid: cid.toString(), bytes: part.byteLength, doneBytes, totalBytes, partsDone: parts.length, partsTotal: layers.parts.length }))
  }
  let tokenizer: ModelManifest['tokenizer'] = null
  if (ckpt.tokenizer !== undefined) {
    const bytes = encodeTokenizer(ckpt.tokenizer)
    tokenizer = { cid: (await add(bytes)).toString(), byteLength: bytes.byteLength }
  }
  const manifest: ModelManifest = { format: MANIFEST_FORMAT, version: MANIFEST_VERSION, config: layers.config, parts, tokenizer, byteLength: totalBytes }
  const bytes = encodeManifest(manifest)
  const cid = await add(bytes)
  onProgress?.(new CustomProgressEvent('weights:import:manifest', { cid: cid.toString(), byteLength: bytes.byteLength }))
  return { cid, manifest }
}
