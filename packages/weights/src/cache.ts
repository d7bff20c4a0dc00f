// Node build: the cache is a blockstore-fs directory (cache.browser.ts: IndexedDB).
import { MemoryBlockstore } from 'blockstore-core'
import { FsBlockstore } from 'blockstore-fs'
import type { Blockstore } from 'interface-blockstore'

export interface OpenedCache {
  blockstore: Blockstore
  close: () => Promise<void>
}

/** `cache`: a directory for blockstore-fs (created if missing); none: blocks live in memory. */
export async function openCache (cache?: string): Promise<OpenedCache> {
  if (cache === undefined) return { blockstore: new MemoryBlockstore(), close: async () => {} }
  const store = new FsBlockstore(cache)
  await store.open()
  return { blockstore: store, close: async () => { await store.close() } }
}
