import { StrictSign } from '@libp2p/gossipsub'
import type { GossipsubOpts } from '@libp2p/gossipsub'
import { createTopicScoreParams } from '@libp2p/gossipsub/score'
import type { RPC } from '@libp2p/gossipsub/message'
import { MAX_RPC_BYTES, TOPIC_PREFIX } from './constants.ts'
import type { GossipCounters } from './gossip-counters.ts'

export type Plane = 'membership' | 'election' | 'state'
export const PLANES: readonly Plane[] = ['membership', 'election', 'state']
/**
 * Every topic of a mesh: the mesh service's planes, and `metrics`, on which browser tabs
 * publish summaries of their measured performance (@shardmesh/history `tab-summary`) for the
 * nodes that record history. The mesh service itself does not subscribe to `metrics`.
 */
export type Topic = Plane | 'metrics'
export const TOPICS: readonly Topic[] = [...PLANES, 'metrics']

/** `/shardmesh/<meshId>/<topic>/1` */
export function topicName (meshId: string, plane: Topic): string {
  return `/${TOPIC_PREFIX}/${meshId}/${plane}/1`
}

function hex (bytes: Uint8Array | undefined): string {
  if (bytes === undefined) return ''
  let s = ''
  for (const b of bytes) s += b.toString(16).padStart(2, '0')
  return s
}

/** FNV-1a over the payload, for messages without `from`/`seqno` (which StrictSign rejects anyway). */
function fnv (bytes: Uint8Array | undefined): string {
  let h = 0x811c9dc5
  for (const b of bytes ?? []) h = Math.imul(h ^ b, 0x01000193)
  return (h >>> 0).toString(16)
}

/**
 * Duplicate detection before signature verification: (from, seqno) is the StrictSign
 * message id, so a copy arriving from a second mesh peer costs a map lookup, not an
 * ed25519 verification.
 */
function fastMsgId (msg: RPC.Message): string {
  if (msg.from === undefined || msg.seqno === undefined) return `u:${msg.topic}:${fnv(msg.data)}`
  return `${hex(msg.from)}:${hex(msg.seqno)}`
}

/**
 * Gossipsub settings that work from 2 to ~100 peers (the package README gives the reasons
 * and the figures behind them):
 * - StrictSign: every message carries `from`, `seqno`, the signature and the key; gossipsub
 *   drops anything else before our validators run.
 * - No flood publishing: a peer's own messages go to its mesh peers (D) like forwarded ones.
 *   In a mesh of ≤ 4 other peers that is everyone; at 50 peers, flood publishing sent a copy
 *   over every connection and multiplied the duplicates each peer verifies.
 * - D=3, Dlo=2, Dhi=6, Dout=1, Dlazy=3, gossipFactor 0.1: three mesh links per topic give
 *   log-depth delivery with few duplicate copies; IHAVE gossip to three more covers losses.
 * - heartbeat every 700 ms: the mesh is repaired soon after a peer is lost, at modest IHAVE traffic.
 * - allowPublishToZeroTopicPeers: the first peer of a mesh announces to nobody without an error.
 * - Scoring: IP colocation off (every local peer, and NATed tabs, share an address);
 *   delivery-rate penalties off (the election topic is quiet between elections); invalid
 *   messages weigh -10 each (squared), so a peer sending a few forged or malformed messages
 *   is graylisted and its RPCs dropped (`gossip-graylisted`).
 */
export function gossipOptions (meshId: string, counters: GossipCounters, overrides: Partial<GossipsubOpts> = {}): Partial<GossipsubOpts> {
  const topics = TOPICS.map(t => topicName(meshId, t))
  const topicParams = createTopicScoreParams({
    topicWeight: 1,
    timeInMeshWeight: 0.01,
    timeInMeshQuantum: 1000,
    timeInMeshCap: 100,
    firstMessageDeliveriesWeight: 0,
    meshMessageDeliveriesWeight: 0,
    meshFailurePenaltyWeight: 0,
    invalidMessageDeliveriesWeight: -10,
    invalidMessageDeliveriesDecay: 0.5
  })
  return {
    globalSignaturePolicy: StrictSign,
    allowPublishToZeroTopicPeers: true,
    ignoreDuplicatePublishError: true,
    floodPublish: false,
    emitSelf: false,
    fallbackToFloodsub: false,
    D: 3,
    Dlo: 2,
    Dhi: 6,
    Dout: 1,
    Dscore: 2,
    Dlazy: 3,
    gossipFactor: 0.1,
    heartbeatInterval: 700,
    allowedTopics: topics,
    maxInboundDataLength: MAX_RPC_BYTES,
    fastMsgIdFn: fastMsgId,
    scoreParams: {
      IPColocationFactorWeight: 0,
      topics: Object.fromEntries(topics.map(t => [t, topicParams]))
    },
    metricsRegister: counters.register,
    metricsTopicStrToLabel: new Map(topics.map(t => [t, t])),
    ...overrides
  }
}
