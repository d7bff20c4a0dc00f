// Browser build (package.json `browser` map): the cache is an IndexedDB database (blockstore-idb).
import { MemoryBlockstore } from 'blockstore-core'
import { IDBBlockstore } from 'blockstore-idb'
import type { OpenedCache } from './cache.ts'

export type { OpenedCache } from './cache.ts'

/** `cache`: an IndexedDB database name (blockstore-idb); none: blocks live in memory. */
export async function openCache (cache?: string): Promise<OpenedCache> {
  if (cache === undefined) return { blockstore: new MemoryBlockstore(), close: async () => {} }
  const store = new IDBBlockstore(cache)
  await store.open()
  return { blockstore: store, close: async () => { await store.close() } }
}
