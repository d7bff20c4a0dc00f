import { MemoryBlockstore } from 'blockstore-core'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { describe, expect, it } from 'vitest'
import { WriteBehindBlockstore } from '../src/write-behind.ts'

/** A memory store whose writes wait until `open()` (or fail with `fail`). */
class GatedStore extends MemoryBlockstore {
  private opened: () => void = () => {}
  private readonly gate = new Promise<void>(resolve => { this.opened = resolve })
  fail: Error | undefined
  open (): void { this.opened() }
  async put (cid: CID, bytes: Uint8Array): Promise<CID> {
    await this.gate
    if (this.fail !== undefined) throw this.fail
    return await super.put(cid, bytes)
  }
}

async function block (n: number): Promise<{ cid: CID, bytes: Uint8Array }> {
  const bytes = new Uint8Array(1000).fill(n)
  return { cid: CID.createV1(raw.code, await sha256.digest(bytes)), bytes }
}

async function bytesOf (store: WriteBehindBlockstore, cid: CID): Promise<Uint8Array> {
  const chunks: Uint8Array[] = []
  for await (const c of store.get(cid)) chunks.push(c)
  expect(chunks).toHaveLength(1)
  return chunks[0]
}

describe('WriteBehindBlockstore (the tab cache: IndexedDB written behind the fetch)', () => {
  it('acknowledges a put before the store has it, serves it meanwhile, and flush waits for the write', async () => {
    const store = new GatedStore()
    const behind = new WriteBehindBlockstore(store)
    const a = await block(1)
    expect(await behind.put(a.cid, a.bytes)).toBe(a.cid)
    expect(await store.has(a.cid)).toBe(false)
    expect(await behind.has(a.cid)).toBe(true)
    expect(await bytesOf(behind, a.cid)).toEqual(a.bytes)
    let flushed = false
    const flush = behind.flush().then(() => { flushed = true })
    await new Promise(resolve => setTimeout(resolve, 20))
    expect(flushed).toBe(false)
    store.open()
    await flush
    expect(await store.has(a.cid)).toBe(true)
    expect(await bytesOf(behind, a.cid)).toEqual(a.bytes)
    expect(await behind.has((await block(2)).cid)).toBe(false)
  })

  it('a failed write surfaces on flush as CacheWriteError, and the block is not claimed', async () => {
    const store = new GatedStore()
    store.fail = new Error('QuotaExceededError')
    const behind = new WriteBehindBlockstore(store)
    const a = await block(3)
    await behind.put(a.cid, a.bytes)
    store.open()
    const err = await behind.flush().then(() => undefined, (e: Error) => e)
    expect(err?.name).toBe('CacheWriteError')
    expect(err?.message).toMatch(/QuotaExceededError/)
    expect(await behind.has(a.cid)).toBe(false)
  })
})
