import * as dagPb from '@ipld/dag-pb'
import * as raw from 'multiformats/codecs/raw'
import type { Blockstore } from 'interface-blockstore'
import type { CID } from 'multiformats/cid'

async function bytesOf (store: Pick<Blockstore, 'get'>, cid: CID, signal?: AbortSignal): Promise<Uint8Array> {
  const chunks: Uint8Array[] = []
  for await (const c of store.get(cid, { signal })) chunks.push(c)
  if (chunks.length === 1) return chunks[0]
  const out = new Uint8Array(chunks.reduce((a, c) => a + c.byteLength, 0))
  let off = 0
  for (const c of chunks) { out.set(c, off); off += c.byteLength }
  return out
}

/**
 * Whether every block of a UnixFS file is in `store`, reading only the interior (dag-pb)
 * nodes: raw leaves are checked with `has`. Cheap enough to run over a whole model at start.
 */
export async function isHeld (store: Pick<Blockstore, 'get' | 'has'>, cid: CID, signal?: AbortSignal): Promise<boolean> {
  if (!(await store.has(cid, { signal }))) return false
  if (cid.code === raw.code) return true
  const node = dagPb.decode(await bytesOf(store, cid, signal))
  for (const link of node.Links) {
    if (!(await isHeld(store, link.Hash, signal))) return false
  }
  return true
}
