// Browser build (package.json `browser` map): the cache is an IndexedDB database (blockstore-idb),
// written behind the fetch (write-behind.ts).
import { MemoryBlockstore } from 'blockstore-core'
import { IDBBlockstore } from 'blockstore-idb'
import { WriteBehindBlockstore } from './write-behind.ts'
import type { OpenedCache } from './cache.ts'

export type { OpenedCache } from './cache.ts'

/** `cache`: an IndexedDB database name (blockstore-idb); none: blocks live in memory. Close waits for the writes. */
export async function openCache (cache?: string): Promise<OpenedCache> {
  if (cache === undefined) return { blockstore: new MemoryBlockstore(), close: async () => {} }
  const store = new IDBBlockstore(cache)
  await store.open()
  const behind = new WriteBehindBlockstore(store)
  return {
    blockstore: behind,
    close: async () => {
      try { await behind.flush() } finally { await store.close() }
    }
  }
}
