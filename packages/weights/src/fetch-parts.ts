import { CustomProgressEvent } from 'progress-events'
import { PART_CONCURRENCY } from './constants.ts'
import { FetchAbortedError, InvalidManifestError } from './errors.ts'
import { fetchFile } from './fetch-file.ts'
import { parseCid } from './manifest.ts'
import type { FileFetchContext } from './fetch-file.ts'
import type { FetchProgressEvents, ManifestPartRef, ModelManifest, Provider } from './types.ts'
import type { ProgressOptions } from 'progress-events'

export interface FetchPartsOptions extends ProgressOptions<FetchProgressEvents> {
  /**
   * Peers to ask first, in this order: peer ids, or multiaddrs ending in `/p2p/<peer id>`.
   * @default [] (only mesh members that announce the parts)
   */
  providers?: string[]
  /** Also ask mesh members whose announced layers cover a part. @default true when the node has a mesh */
  useMesh?: boolean
  /** Parts fetched at the same time. @default 4 */
  concurrency?: number
  signal?: AbortSignal
}

export interface FetchPartsResult {
  /** The bytes of each part (`partBytes` of the original checkpoint), by part id. */
  parts: Map<string, Uint8Array>
  /** Where each part came from: a provider's peer id, or `local` (the store). */
  sources: Record<string, string>
  /** Bytes of the parts (network and store). */
  bytes: number
  /** Bytes of blocks that came from the network (including the UnixFS interior nodes). */
  networkBytes: number
  ms: number
}

/** Fetch `parts` (concurrently), each from the store or its providers; the first failure aborts the rest. */
export async function fetchParts (ctx: FileFetchContext, manifest: ModelManifest, parts: ManifestPartRef[], providersFor: (part: ManifestPartRef, index: number) => Provider[], options: FetchPartsOptions = {}): Promise<FetchPartsResult> {
  const start = performance.now()
  const known = new Set(manifest.parts.map(p => p.id))
  for (const p of parts) if (!known.has(p.id)) throw new InvalidManifestError(`part ${p.id} is not in this manifest`)
  const totalBytes = parts.reduce((a, p) => a + p.byteLength, 0)
  const emit = options.onProgress
  emit?.(new CustomProgressEvent('weights:fetch:start', { parts: parts.map(p => p.id), totalBytes }))
  const controller = new AbortController()
  const signal = options.signal === undefined ? controller.signal : AbortSignal.any([options.signal, controller.signal])
  const result: FetchPartsResult = { parts: new Map(), sources: {}, bytes: 0, networkBytes: 0, ms: 0 }
  let received = 0
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < parts.length && !signal.aborted) {
      const index = next++
      const part = parts[index]
      const { bytes, source } = await fetchFile(ctx, { cid: parseCid(part.cid, `part ${part.id}`), label: `part ${part.id}`, byteLength: part.byteLength }, providersFor(part, index), {
        signal,
        onBytes: (n, provider) => {
          received += n
          emit?.(new CustomProgressEvent('weights:fetch:bytes', { part: part.id, provider, bytes: n, receivedBytes: received, totalBytes }))
        },
        onNetworkBlock: n => { result.networkBytes += n },
        onFailure: (provider, reason, message) => emit?.(new CustomProgressEvent('weights:fetch:provider-failed', { part: part.id, provider, reason, message }))
      })
      ctx.counters.filesFetched++
      result.parts.set(part.id, bytes)
      result.sources[part.id] = source
      result.bytes += bytes.byteLength
      emit?.(new CustomProgressEvent('weights:fetch:part', { part: part.id, cid: part.cid, source, bytes: bytes.byteLength, partsDone: result.parts.size, partsTotal: parts.length }))
    }
  }
  const n = Math.max(1, Math.min(options.concurrency ?? PART_CONCURRENCY, parts.length))
  const workers = Array.from({ length: n }, async () => {
    try {
      await worker()
    } catch (err) {
      controller.abort(err)
      throw err
    }
  })
  const settled = await Promise.allSettled(workers)
  if (options.signal?.aborted === true) throw new FetchAbortedError('fetching parts was aborted', { cause: options.signal.reason })
  const failed = settled.find(s => s.status === 'rejected')
  // the first failure is the cause; the others are the aborts it triggered
  if (failed !== undefined) throw controller.signal.reason ?? (failed as PromiseRejectedResult).reason
  result.ms = performance.now() - start
  return result
}
