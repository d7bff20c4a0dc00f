import { cpuBackend } from '@shardmesh/engine'
import { createMeshPeer } from '@shardmesh/mesh'
import type { MeshNode, MeshPeerInit } from '@shardmesh/mesh'
import type { Checkpoint } from '@shardmesh/model'
import { Endpoint, SessionDriver, StageServer } from '@shardmesh/pipeline'
import type { RouteHop } from '@shardmesh/protocol'
import type { StageServerInit } from '@shardmesh/pipeline'

/** Real libp2p nodes in this process (TCP on 127.0.0.1): one head and one stage server per range. */
export interface LocalPipeline {
  head: MeshNode
  driver: SessionDriver
  nodes: MeshNode[]
  servers: StageServer[]
  /** The stage servers' endpoints (rejection counters). */
  endpoints: Endpoint[]
  /** The head's endpoint. */
  headEndpoint: Endpoint
  route: RouteHop[]
  stop: () => Promise<void>
}

/**
 * For suites that load one process hard (floods, paused readers): every node here shares this
 * process's event loop (each peer of a real mesh has its own) on a machine shared with other
 * suites, so pings get the time to answer that a peer of its own would have, and a link is not
 * cut as hung while the process is busy.
 */
export const PATIENT_PINGS: Partial<MeshPeerInit> = { connectionMonitor: { pingInterval: 2000, pingTimeout: { minTimeout: 10_000, maxTimeout: 10_000 } } }

export async function startNode (init: Partial<MeshPeerInit> = {}): Promise<MeshNode> {
  return await createMeshPeer({ listen: ['/ip4/127.0.0.1/tcp/0'], meshId: `pipeline-test-${process.pid}`, ...init })
}

/** One stage server per range: whole layers `[l0, l1)`, or a span with `units` (strategy attention_feedforward). */
export async function localPipeline (model: Checkpoint, ranges: Array<[number, number] | { layers: [number, number], units?: [number, number] }>, options: { maxFrameBytes?: number, prefillChunk?: number, server?: Pick<StageServerInit, 'idleTtlMs' | 'maxSessionsPerUpstream' | 'limits'>, node?: Partial<MeshPeerInit> } = {}): Promise<LocalPipeline> {
  const spans = ranges.map(r => Array.isArray(r) ? { layers: r } : r)
  const nodes = await Promise.all(ranges.map(async () => await startNode(options.node)))
  const endpoints = nodes.map(node => new Endpoint(node, { maxFrameBytes: options.maxFrameBytes }))
  const servers = await Promise.all(nodes.map(async (node, i) => {
    const server = new StageServer({ endpoint: endpoints[i], backend: cpuBackend(), config: model.config, tensors: model.tensors, ...options.server })
    await server.start()
    await server.serve(spans[i].layers, { units: spans[i].units })
    return server
  }))
  const head = await startNode(options.node)
  const headEndpoint = new Endpoint(head)
  const driver = new SessionDriver({ endpoint: headEndpoint, config: model.config, prefillChunk: options.prefillChunk })
  await driver.start()
  const route: RouteHop[] = nodes.map((n, i) => ({ peerId: n.peerId.toString(), addrs: n.getMultiaddrs().map(String), ...spans[i] }))
  return {
    head, driver, nodes, servers, endpoints, headEndpoint, route,
    stop: async () => {
      await driver.stop()
      await Promise.all(servers.map(async s => { await s.stop() }))
      await Promise.all([head, ...nodes].map(async n => { await n.stop() }))
    }
  }
}
