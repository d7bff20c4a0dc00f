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

export interface WeightsHelia {
  helia: Helia
  /** Every block bitswap received, tampered or not; absent without libp2p. */
  received?: EventTarget
}

/**
 * Helia on an existing libp2p node (the mesh's: one node per peer), offline-safe (DESIGN §2):
 * the light build with no routers, no delegated routing, no gateways, no HTTP — only bitswap
 * over the node's connections. `createHelia({ libp2p })` would create a second node, so the
 * node is attached as `helia.libp2p` before bitswap starts on it. Without a node, Helia is a
 * local store (import, read back) and fetches nothing.
 *
 * Stopping Helia unregisters bitswap from the node and leaves the node running.
 */
export async function startHelia (init: { libp2p?: Libp2p, blockstore: Blockstore, datastore: NonNullable<HeliaInit['datastore']>, bitswap?: BitswapOptions }): Promise<WeightsHelia> {
  const helia = createHeliaLight({ blockstore: init.blockstore, datastore: init.datastore })
  if (init.libp2p === undefined) {
    await helia.start()
    return { helia }
  }
  Object.defineProperty(helia, 'libp2p', { value: init.libp2p, enumerable: true })
  withBitswap(helia as Parameters<typeof withBitswap>[0], init.bitswap)
  await helia.start()
  return { helia, received: receivedBlocks(helia) }
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
