import type { AvgMinMax, AvgMinMaxConfig, Gauge, GaugeConfig, Histogram, HistogramConfig, MetricsRegister } from '@libp2p/gossipsub/metrics'

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
 * A gossipsub `MetricsRegister` (`@libp2p/gossipsub/metrics`, given as `metricsRegister` in
 * `gossipOptions`) that keeps only what the mesh reports: bytes and counts of RPCs sent and
 * received (gossip traffic per peer) and the reasons gossipsub itself rejected messages
 * (unsigned, bad signature, key not matching `from`, undecodable or oversized RPCs).
 * Gossipsub registers every metric once, at start, as a gauge, histogram or avg/min/max and
 * updates it with `inc`/`set`/`observe`; everything this class does not keep is accepted and
 * dropped.
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
    gauge: <L extends Labels>(config: GaugeConfig<L>): Gauge<L> => this.gauge(config.name) as unknown as Gauge<L>,
    histogram: <L extends Labels>(_config: HistogramConfig<L>): Histogram<L> => ignoredHistogram as unknown as Histogram<L>,
    avgMinMax: <L extends Labels>(_config: AvgMinMaxConfig<L>): AvgMinMax<L> => ignoredAvgMinMax as unknown as AvgMinMax<L>
  }

  /**
   * A gauge whose `inc` feeds `count`. Gossipsub calls `inc(value?)` on unlabelled gauges and
   * `inc(labels, value?)` on labelled ones; `set` (sizes and scores sampled by collect
   * functions) is not kept.
   */
  private gauge (name: string): Gauge<Labels> & Gauge {
    const inc = (a?: Labels | number, b?: number): void => {
      const labels = typeof a === 'object' ? a : undefined
      const value = typeof a === 'number' ? a : (b ?? 1)
      this.count(name, labels, value)
    }
    return { inc, set: () => {}, addCollect: () => {} }
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

const ignoredHistogram: Histogram<Labels> & Histogram = { startTimer: () => () => {}, observe: () => {}, reset: () => {} }
const ignoredAvgMinMax: AvgMinMax<Labels> & AvgMinMax = { set: () => {} }
