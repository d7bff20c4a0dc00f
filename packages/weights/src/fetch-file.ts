import { unixfs } from '@helia/unixfs'
import { peerIdFromString } from '@libp2p/peer-id'
import { connect } from './providers.ts'
import { ContentUnavailableError, FetchAbortedError, InvalidManifestError, NoProvidersError, PartNotHeldError, ProviderStalledError, TamperedBlockError } from './errors.ts'
import type { BlockAudit } from './audit.ts'
import type { FailureReason } from './errors.ts'
import type { Provider, WeightsCounters } from './types.ts'
import type { Helia } from '@helia/interface'
import type { Libp2p } from '@libp2p/interface'
import type { Blockstore } from 'interface-blockstore'
import type { CID } from 'multiformats/cid'

/** What a file fetch needs from its weights node. */
export interface FileFetchContext {
  helia: Helia
  libp2p?: Libp2p
  audit: BlockAudit
  counters: WeightsCounters
  blockConcurrency: number
  stallTimeoutMs: number
  dialTimeoutMs: number
}

export interface FileTarget {
  cid: CID
  /** What the file is in messages and events: a part id, `manifest` or `tokenizer`. */
  label: string
  /** Exact size when the manifest says it; otherwise at most `maxBytes`. */
  byteLength?: number
  maxBytes?: number
}

export interface FileFetchOptions {
  signal?: AbortSignal
  /** Bytes of the file arrived, from `provider` (`local`: the store). */
  onBytes?: (bytes: number, provider: string) => void
  onFailure?: (provider: string, reason: FailureReason, message: string) => void
  /** A block came from the network (not the store): its size. */
  onNetworkBlock?: (bytes: number) => void
}

/** Copies a file's chunks into one buffer, refusing more (or fewer) bytes than expected. */
async function collect (chunks: AsyncIterable<Uint8Array>, target: FileTarget, onChunk: (n: number) => void): Promise<Uint8Array> {
  const limit = target.byteLength ?? target.maxBytes ?? Infinity
  const parts: Uint8Array[] = []
  const out = target.byteLength !== undefined ? new Uint8Array(target.byteLength) : undefined
  let n = 0
  for await (const c of chunks) {
    if (n + c.byteLength > limit) throw new InvalidManifestError(`${target.label} (${target.cid.toString()}) is larger than ${target.byteLength !== undefined ? 'the manifest\'s' : 'the allowed'} ${limit} bytes`)
    if (out !== undefined) out.set(c, n)
    else parts.push(c.slice())
    n += c.byteLength
    onChunk(c.byteLength)
  }
  if (out !== undefined && n !== out.byteLength) throw new InvalidManifestError(`${target.label} (${target.cid.toString()}) is ${n} bytes, the manifest says ${out.byteLength}`)
  if (out !== undefined) return out
  const all = new Uint8Array(n)
  let off = 0
  for (const p of parts) { all.set(p, off); off += p.byteLength }
  return all
}

function hasName (err: unknown, names: string[]): boolean {
  for (let e = err as { name?: string, errors?: unknown[], cause?: unknown } | undefined, depth = 0; e != null && depth < 8; depth++) {
    if (names.includes(e.name ?? '')) return true
    if (Array.isArray(e.errors) && e.errors.some(x => hasName(x, names))) return true
    e = e.cause as typeof e
  }
  return false
}

/** The file from the local store only; PartNotHeldError when a block is missing. */
export async function readLocal (helia: Helia, target: FileTarget, signal?: AbortSignal): Promise<Uint8Array> {
  try {
    return await collect(unixfs(helia).cat(target.cid, { offline: true, signal }), target, () => {})
  } catch (err) {
    if (hasName(err, ['BlockNotFoundWhileOfflineError'])) throw new PartNotHeldError(`${target.label} (${target.cid.toString()}) is not (completely) in the local store`)
    throw err
  }
}

/**
 * The file from the local store when complete there, else from the first provider that
 * delivers it. Each attempt is a bitswap session with exactly one provider (so the bytes
 * are not requested from every holder at once); cached blocks are not asked for again.
 * An attempt fails over to the next provider when the dial fails, the provider lacks a
 * block, no block arrives within the stall timeout, or it sends a tampered block (bitswap
 * hashes every block; Helia checks it against the CID before it reaches the store). A
 * provider that stalled or whose connection closed is tried once more, after the others.
 */
export async function fetchFile (ctx: FileFetchContext, target: FileTarget, providers: Provider[], options: FileFetchOptions = {}): Promise<{ bytes: Uint8Array, source: string }> {
  const { signal } = options
  const local = await readLocal(ctx.helia, target, signal).catch((err: Error) => {
    if (err.name === 'PartNotHeldError') return undefined
    throw err
  })
  if (local !== undefined) {
    options.onBytes?.(local.byteLength, 'local')
    return { bytes: local, source: 'local' }
  }
  const { libp2p } = ctx
  const candidates = providers.filter(p => !ctx.audit.distrusted.has(p.peerId) && p.peerId !== libp2p?.peerId.toString())
  if (libp2p === undefined || candidates.length === 0) {
    const skipped = providers.filter(p => ctx.audit.distrusted.has(p.peerId)).length
    const why = libp2p === undefined
      ? 'no network (no libp2p node)'
      : skipped > 0 ? `every known provider (${skipped}) is distrusted for sending tampered blocks` : 'no provider is known (give providers, or join a mesh whose members announce it)'
    throw new NoProvidersError(`${target.label} (${target.cid.toString()}) is not in the local store, and ${why}`)
  }
  const attempts: ContentUnavailableError['attempts'] = []
  // a provider that stalled, or whose connection closed during the attempt (a connection
  // monitor's ping timing out behind bulk data to a busy tab), is asked once more after the
  // others: the new session redials and sends the wants again (bitswap drops the blocks of a
  // send that failed and never resends them)
  const queue = [...candidates]
  const retried = new Set<string>()
  for (const provider of queue) {
    if (ctx.audit.distrusted.has(provider.peerId)) continue
    try {
      return { bytes: await attempt(ctx, libp2p, target, provider, options), source: provider.peerId }
    } catch (err) {
      if (signal?.aborted === true) throw new FetchAbortedError(`fetching ${target.label} (${target.cid.toString()}) was aborted`, { cause: signal.reason })
      if ((err as Error).name === 'InvalidManifestError') throw err
      const reason = classify(err)
      const message = (err as Error).message
      ctx.counters.providerFailures[reason]++
      attempts.push({ provider: provider.peerId, reason, message })
      options.onFailure?.(provider.peerId, reason, message)
      const dropped = libp2p.getConnections(peerIdFromString(provider.peerId)).length === 0
      if ((reason === 'stalled' || (dropped && reason !== 'dial')) && !retried.has(provider.peerId)) {
        retried.add(provider.peerId)
        queue.push(provider)
      }
    }
  }
  throw new ContentUnavailableError(`no provider delivered ${target.label} (${target.cid.toString()}): ${attempts.map(a => `${a.provider} ${a.reason}`).join(', ')}`, attempts)
}

function classify (err: unknown): FailureReason {
  if (err instanceof TamperedBlockError) return 'tampered'
  if (err instanceof ProviderStalledError) return 'stalled'
  if ((err as Error & { dial?: boolean }).dial === true) return 'dial'
  // a provider without the block answers DONT_HAVE: the session evicts it and finds no other
  if (hasName(err, ['NoRoutersAvailableError', 'InsufficientProvidersError'])) return 'missing'
  return 'error'
}

async function attempt (ctx: FileFetchContext, libp2p: Libp2p, target: FileTarget, provider: Provider, options: FileFetchOptions): Promise<Uint8Array> {
  const controller = new AbortController()
  const signal = options.signal === undefined ? controller.signal : AbortSignal.any([options.signal, controller.signal])
  const fail = (err: Error): void => { controller.abort(err) }
  let timer: ReturnType<typeof setTimeout> | undefined
  const arm = (): void => {
    clearTimeout(timer)
    timer = setTimeout(() => { fail(new ProviderStalledError(`no block from ${provider.peerId} for ${ctx.stallTimeoutMs} ms`)) }, ctx.stallTimeoutMs)
  }
  const unwatch = ctx.audit.watch(provider.peerId, fail)
  let session: ReturnType<Helia['blockstore']['createSession']> | undefined
  try {
    try {
      await connect(libp2p, provider, AbortSignal.any([signal, AbortSignal.timeout(ctx.dialTimeoutMs)]))
    } catch (err) {
      throw Object.assign(new Error(`cannot dial ${provider.peerId}: ${(err as Error).message}`), { dial: true })
    }
    arm()
    session = ctx.helia.blockstore.createSession(target.cid, { providers: [peerIdFromString(provider.peerId).toCID()], minProviders: 1, maxProviders: 1, signal })
    const recorder = recordingStore(ctx, session, arm, options.onNetworkBlock)
    const chunks = unixfs({ blockstore: recorder }).cat(target.cid, { signal, blockReadConcurrency: ctx.blockConcurrency } as Parameters<ReturnType<typeof unixfs>['cat']>[1])
    return await collect(chunks, target, n => options.onBytes?.(n, provider.peerId))
  } catch (err) {
    // the attempt's own reason (tampered, stalled) explains the abort better than the AbortError it caused
    if (controller.signal.aborted && options.signal?.aborted !== true) throw controller.signal.reason
    throw err
  } finally {
    clearTimeout(timer)
    unwatch()
    session?.close()
  }
}

/** The session blockstore, recording each CID asked for (for the audit) and counting blocks. */
function recordingStore (ctx: FileFetchContext, session: Pick<Blockstore, 'get' | 'put' | 'has'>, onBlock: () => void, onNetworkBlock?: (bytes: number) => void): Pick<Blockstore, 'get' | 'put' | 'has'> {
  return {
    get: async function * (cid, options) {
      ctx.audit.expect(cid)
      const cached = await ctx.helia.blockstore.has(cid)
      let n = 0
      for await (const chunk of session.get(cid, options)) {
        n += chunk.byteLength
        yield chunk
      }
      onBlock()
      if (cached) ctx.counters.blocksCached++
      else {
        ctx.counters.blocksFetched++
        ctx.counters.bytesFetched += n
        onNetworkBlock?.(n)
      }
    },
    has: async (cid, options) => await session.has(cid, options),
    put: async (cid, bytes, options) => await session.put(cid, bytes, options)
  }
}
