import type { MetricsRegister } from '@libp2p/gossipsub/metrics'

type Labels = Record<string, string | number>

/** Gossipsub validation failures (before our topic validators run) and stream errors, as rejection reasons. */
const REJECTIONS: Record<string, (labels: Labels | undefined) => string | undefined> = {
  gossipsub_msg_received_invalid_total: labels => {
    const error = String(labels?.error ?? '')
    // 'reject'/'ignore' come from our own validators, which count their reasons themselves
    return error === 'reject' || error === 'ignore' ? undefined : `gossip-${error.replaceAll('_', '-')}`
  },
  gossipsub_rpc_data_err_count_total: () => 'gossip-malformed-rpc',
  gossipsub_peer_read_stream_err_count_total: () => 'gossip-stream-error',
  gossipsub_rpc_rcv_not_accepted_total: () => 'gossip-graylisted'
}

/**
 * A gossipsub `MetricsRegister` that keeps only what the mesh reports: bytes of RPCs sent
 * and received (gossip traffic per peer) and the reasons gossipsub itself rejected messages
 * (unsigned, bad signature, key not matching `from`, undecodable or oversized RPCs).
 * Everything else gossipsub measures is dropped.
 */
export class GossipCounters {
  sentBytes = 0
  recvBytes = 0
  sentRpcs = 0
  recvRpcs = 0
  private onReject: (reason: string) => void = () => {}

  /** Where rejection reasons go (the mesh's rejection counters). */
  setRejectionSink (sink: (reason: string) => void): void {
    this.onReject = sink
  }

  readonly register: MetricsRegister = {
    gauge: (config: { name: string }): any => {
      const name = config.name
      const inc = (a?: Labels | number, b?: number): void => {
        const labels = typeof a === 'object' ? a : undefined
        const value = typeof a === 'number' ? a : (b ?? 1)
        this.count(name, labels, value)
      }
      return { inc, set: () => {}, addCollect: () => {} }
    },
    histogram: (): any => ({ startTimer: () => () => {}, observe: () => {}, reset: () => {} }),
    avgMinMax: (): any => ({ set: () => {} })
  }

  private count (name: string, labels: Labels | undefined, value: number): void {
    switch (name) {
      case 'gossipsub_rpc_sent_bytes_total': this.sentBytes += value; return
      case 'gossipsub_rpc_recv_bytes_total': this.recvBytes += value; return
      case 'gossipsub_rpc_sent_count_total': this.sentRpcs += value; return
      case 'gossipsub_rpc_recv_count_total': this.recvRpcs += value; return
    }
    const reason = REJECTIONS[name]?.(labels)
    if (reason !== undefined) for (let i = 0; i < value; i++) this.onReject(reason)
  }
}
