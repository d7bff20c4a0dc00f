// A blockstore that acknowledges a put at once and writes the block to the store underneath
// in the background. In a tab each IndexedDB put took its own transaction and the fetch
// waited for it: the main thread sat idle half of a Helia fetch (test/bench/weights-tab-profile.ts).
// Reads see blocks still being written; `flush` (and the cache's close) waits for every write.
import { BaseBlockstore } from 'blockstore-core'
import { base32 } from 'multiformats/bases/base32'
import { CacheWriteError } from './errors.ts'
import type { AbortOptions } from '@libp2p/interface'
import type { Blockstore, Pair } from 'interface-blockstore'
import type { CID } from 'multiformats/cid'

const key = (cid: CID): string => base32.encode(cid.multihash.bytes)

export class WriteBehindBlockstore extends BaseBlockstore {
  private readonly pending = new Map<string, { bytes: Uint8Array, written: Promise<void> }>()
  private failure: Error | undefined
  private readonly store: Blockstore

  constructor (store: Blockstore) {
    super()
    this.store = store
  }

  put (cid: CID, bytes: Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>, options?: AbortOptions): CID | Promise<CID> {
    if (!(bytes instanceof Uint8Array)) return this.store.put(cid, bytes, options)
    const k = key(cid)
    if (this.pending.has(k)) return cid
    // not the caller's signal: the fetch that put the block may end before it is written
    const written = Promise.resolve(this.store.put(cid, bytes)).then(() => {}, (err: Error) => {
      this.failure ??= new CacheWriteError(`writing block ${cid.toString()} to the cache failed: ${err.message}`, { cause: err })
    }).finally(() => { this.pending.delete(k) })
    this.pending.set(k, { bytes, written })
    return cid
  }

  async * get (cid: CID, options?: AbortOptions): AsyncGenerator<Uint8Array> {
    const p = this.pending.get(key(cid))
    if (p !== undefined) {
      yield p.bytes
      return
    }
    yield * this.store.get(cid, options)
  }

  async has (cid: CID, options?: AbortOptions): Promise<boolean> {
    return this.pending.has(key(cid)) || await this.store.has(cid, options)
  }

  async delete (cid: CID, options?: AbortOptions): Promise<void> {
    await this.pending.get(key(cid))?.written
    await this.store.delete(cid, options)
  }

  async * getAll (options?: AbortOptions): AsyncGenerator<Pair> {
    await this.flush()
    yield * this.store.getAll(options)
  }

  /** Wait for every write so far; CacheWriteError when one failed. */
  async flush (): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending.values()].map(async p => await p.written))
    if (this.failure !== undefined) throw this.failure
  }
}
