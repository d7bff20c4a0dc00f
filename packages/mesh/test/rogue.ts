/**
 * Misbehaving peers for tests: real libp2p nodes that publish well-signed but bad payloads
 * through their own gossipsub, or write raw gossipsub RPCs (unsigned, forged signatures,
 * garbage) on a real `/meshsub/1.1.0` stream.
 */
import { generateKeyPair, publicKeyToProtobuf } from '@libp2p/crypto/keys'
import { gossipsub } from '@libp2p/gossipsub'
import { RPC } from '@libp2p/gossipsub/message'
import { identify } from '@libp2p/identify'
import { noise } from '@libp2p/noise'
import { peerIdFromString } from '@libp2p/peer-id'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { multiaddr } from '@multiformats/multiaddr'
import * as lp from 'it-length-prefixed'
import { createLibp2p } from 'libp2p'
import { PLANES, topicName } from '../src/index.ts'
import type { Plane } from '../src/index.ts'
import type { GossipSub } from '@libp2p/gossipsub'
import type { Libp2p, PrivateKey } from '@libp2p/interface'

const SIGN_PREFIX = new TextEncoder().encode('libp2p-pubsub:')

export interface Rogue {
  node: Libp2p<{ pubsub: GossipSub }>
  id: string
  /** Publish bytes (or an object as JSON) on a mesh topic, signed by the rogue. */
  publish: (plane: Plane, payload: Uint8Array | object) => Promise<void>
}

/** A gossipsub peer subscribed to the mesh's topics, connected to `victim`. */
export async function createRogue (victim: string, meshId = 'default'): Promise<Rogue> {
  const node = await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify(), pubsub: gossipsub({ allowPublishToZeroTopicPeers: true, emitSelf: false }) }
  }) as unknown as Libp2p<{ pubsub: GossipSub }>
  for (const plane of PLANES) node.services.pubsub.subscribe(topicName(meshId, plane))
  await node.dial(multiaddr(victim))
  const victimId = multiaddr(victim).getComponents().findLast(c => c.name === 'p2p')?.value ?? ''
  // wait until the victim's subscriptions reached us, so flood publishing reaches it
  const deadline = Date.now() + 10_000
  while (!node.services.pubsub.getSubscribers(topicName(meshId, 'election')).some(p => p.toString() === victimId)) {
    if (Date.now() > deadline) throw new Error('rogue: victim never subscribed')
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  return {
    node,
    id: node.peerId.toString(),
    publish: async (plane, payload) => {
      const data = payload instanceof Uint8Array ? payload : new TextEncoder().encode(JSON.stringify(payload))
      await node.services.pubsub.publish(topicName(meshId, plane), data)
    }
  }
}

export interface RawMessage {
  /** Peer id the message claims as author (omit for an anonymous message). */
  from?: string
  seqno?: boolean
  /** Sign with this key (a forgery when it is not `from`'s). */
  signWith?: PrivateKey
  /** Attach this key's public key as `key`. */
  key?: PrivateKey
  plane: Plane
  data: Uint8Array | object
}

async function encodeMessage (m: RawMessage, meshId: string): Promise<RPC.Message> {
  const data = m.data instanceof Uint8Array ? m.data : new TextEncoder().encode(JSON.stringify(m.data))
  const seqno = m.seqno === false ? undefined : crypto.getRandomValues(new Uint8Array(8))
  const msg: RPC.Message = { topic: topicName(meshId, m.plane), data, seqno, from: m.from === undefined ? undefined : peerIdFromString(m.from).toMultihash().bytes }
  if (m.signWith !== undefined) {
    const bytes = RPC.Message.encode({ from: msg.from, data, seqno, topic: msg.topic })
    msg.signature = await m.signWith.sign(new Uint8Array([...SIGN_PREFIX, ...bytes]))
  }
  if (m.key !== undefined) msg.key = publicKeyToProtobuf(m.key.publicKey)
  return msg
}

/** A libp2p node without gossipsub that writes raw RPC frames to `victim`'s gossipsub. */
export async function sendRaw (victim: string, frames: Array<RawMessage[] | Uint8Array>, meshId = 'default'): Promise<string> {
  const node = await createLibp2p({
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify() }
  })
  try {
    const stream = await node.dialProtocol(multiaddr(victim), '/meshsub/1.1.0')
    for (const frame of frames) {
      const rpc = frame instanceof Uint8Array ? frame : RPC.encode({ subscriptions: [], messages: await Promise.all(frame.map(async m => await encodeMessage(m, meshId))) })
      stream.send(lp.encode.single(rpc))
    }
    await new Promise(resolve => setTimeout(resolve, 300))
    await stream.close().catch(() => {})
    return node.peerId.toString()
  } finally {
    await node.stop()
  }
}

export async function randomKey (): Promise<PrivateKey> {
  return await generateKeyPair('Ed25519')
}
