import { withBitswap } from '@helia/bitswap'
import { createHeliaLight } from 'helia'
import { WeightsStateError } from './errors.ts'
import type { BitswapOptions } from '@helia/bitswap'
import type { Helia } from '@helia/interface'
import type { Libp2p, PeerId } from '@libp2p/interface'
import type { HeliaInit } from 'helia'
import type { Blockstore } from 'interface-blockstore'
import type { CID } from 'multiformats/cid'

/** What bitswap's want list dispatches for every block it receives (the CID is computed from the bytes). */
export interface ReceivedBlock { sender: PeerId, cid: CID, block: Uint8Array }

/** `@helia/libp2p`'s `HeliaWithLibp2p`: what `withBitswap` takes. */
type HeliaWithLibp2p = Parameters<typeof withBitswap>[0]

export interface WeightsHelia {
  helia: Helia
  /** Every block bitswap received, tampered or not; absent without libp2p. */
  received?: EventTarget
}

/**
 * Helia on an existing libp2p node (the mesh's: one node per peer), offline-safe (DESIGN §2):
 * the light build with no routers, no delegated routing, no gateways, no HTTP — only bitswap
 * over the node's connections. Without a node, Helia is a local store (import, read back) and
 * fetches nothing.
 *
 * Helia 7 composes a node from mixins: `withBitswap(helia)` takes a `HeliaWithLibp2p` (a Helia
 * with a `libp2p` property) and runs bitswap on that node. `@helia/libp2p`'s `withLibp2p`
 * takes libp2p *options* only and creates and owns a node of its own (ipfs/helia#1106 dropped
 * running nodes so Helia controls their life cycle): a second identity and connection set.
 * So the Helia is given the mesh's node as its `libp2p` — the shape `withBitswap` documents —
 * and Helia never starts or stops it: stopping Helia unregisters bitswap and leaves the node
 * running.
 */
export async function startHelia (init: { libp2p?: Libp2p, blockstore: Blockstore, datastore: NonNullable<HeliaInit['datastore']>, bitswap?: BitswapOptions }): Promise<WeightsHelia> {
  const helia = createHeliaLight({ blockstore: init.blockstore, datastore: init.datastore })
  if (init.libp2p === undefined) {
    await helia.start()
    return { helia }
  }
  const networked: HeliaWithLibp2p = Object.assign(helia, { libp2p: init.libp2p })
  withBitswap(networked, init.bitswap)
  await networked.start()
  return { helia: networked, received: receivedBlocks(networked) }
}

/**
 * Bitswap's want list (an EventTarget emitting `block` with `{ sender, cid, block }`). Bitswap
 * hashes every received block and drops those matching no want, silently; this is the one
 * place a tampered block is visible, so the audit listens here. Internal to @helia/bitswap
 * (pinned 4.0.19); the tampered-block test fails if it moves.
 */
function receivedBlocks (helia: Helia): EventTarget {
  const brokers = (helia as unknown as { blockBrokers?: Array<{ name: string, bitswap?: { wantList?: EventTarget } }> }).blockBrokers
  const wantList = brokers?.find(b => b.name === 'bitswap')?.bitswap?.wantList
  if (wantList === undefined || typeof wantList.addEventListener !== 'function') {
    throw new WeightsStateError('@helia/bitswap no longer exposes bitswap.wantList: received blocks cannot be audited (the package is pinned to 4.0.19)')
  }
  return wantList
}
