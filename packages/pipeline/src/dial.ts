import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/** What to dial for a peer: its addresses (each ending in its /p2p/ id), or its id alone when none are known (an open connection, or the peer store). */
export function dialTarget (peerId: string, addrs: string[]): Multiaddr[] | PeerId {
  return addrs.length > 0 ? addrs.map(a => multiaddr(a.includes('/p2p/') ? a : `${a}/p2p/${peerId}`)) : peerIdFromString(peerId)
}
