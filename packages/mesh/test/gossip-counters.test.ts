import { getMetrics } from '@libp2p/gossipsub/metrics'
import { RejectReason, ValidateError } from '@libp2p/gossipsub/types'
import { describe, expect, it } from 'vitest'
import { GossipCounters } from '../src/index.ts'

/** Gossipsub's own metrics (its documented `getMetrics` over a `MetricsRegister`), feeding `counters`. */
function gossipsubMetrics (counters: GossipCounters): ReturnType<typeof getMetrics> {
  return getMetrics(counters.register, new Map([['t', 't']]), { gossipPromiseExpireSec: 3, behaviourPenaltyThreshold: 6, maxMeshMessageDeliveriesWindowSec: 0.01 })
}

describe('GossipCounters (a gossipsub MetricsRegister)', () => {
  it('counts the RPC bytes and counts gossipsub reports, in and out', () => {
    const counters = new GossipCounters()
    const m = gossipsubMetrics(counters)
    m.onRpcRecv({ subscriptions: [], messages: [{ topic: 't' }], control: { ihave: [], iwant: [], graft: [], prune: [], idontwant: [] } }, 120)
    m.onRpcRecv({ subscriptions: [], messages: [] }, 30)
    m.onRpcSent({ subscriptions: [{ subscribe: true, topic: 't' }], messages: [] }, 45)
    expect({ sentBytes: counters.sentBytes, recvBytes: counters.recvBytes, sentRpcs: counters.sentRpcs, recvRpcs: counters.recvRpcs })
      .toEqual({ sentBytes: 45, recvBytes: 150, sentRpcs: 1, recvRpcs: 2 })
  })

  it('turns gossipsub\'s own rejections into reasons, leaving our validators\' verdicts to the mesh', () => {
    const counters = new GossipCounters()
    const reasons: string[] = []
    counters.setRejectionSink(r => { reasons.push(r) })
    const m = gossipsubMetrics(counters)
    m.onMsgRecvInvalid('t', { reason: RejectReason.Error, error: ValidateError.InvalidSignature })
    m.onMsgRecvInvalid('t', { reason: RejectReason.Reject }) // our topic validator said reject: counted by the mesh itself
    m.onRpcDataError()
    m.onPeerReadStreamError()
    m.rpcRecvNotAccepted.inc()
    expect(reasons).toEqual(['gossip-invalid-signature', 'gossip-malformed-rpc', 'gossip-stream-error', 'gossip-graylisted'])
  })

  it('accepts the metrics it does not keep (histograms, avg/min/max, set)', () => {
    const counters = new GossipCounters()
    const m = gossipsubMetrics(counters)
    m.heartbeatDuration.observe(0.2)
    m.heartbeatDuration.startTimer()()
    m.cacheSize.set({ cache: 'x' }, 3)
    m.meshPeerCounts.set({ topicStr: 't' }, 3)
    expect(counters.recvBytes + counters.sentBytes).toBe(0)
  })
})
