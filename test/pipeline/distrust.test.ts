/**
 * A peer that lies about its state — it announces layers [0, 5) over the real mesh API and
 * answers every `prepare`/`open` with NOT_SERVING — is detected by a head when it fails to
 * serve, reported to the coordinator over DISTRUST_PROTOCOL, recorded in the replicated state,
 * seen by the other peers, left out of the coordinator's plan, and still left out after that
 * coordinator is stopped and another is elected. Real libp2p nodes, mesh, election and
 * replication in this process; the coordinators run the real CoordinatorLoop.
 */
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createMeshPeer } from '@shardmesh/mesh'
import type { MeshNode } from '@shardmesh/mesh'
import { createTokenizer, layerManifest } from '@shardmesh/model'
import { loadModel } from '@shardmesh/model/node'
import { CoordinatorLoop, DEFAULT_FAULT_TOLERANCE, Distrust, Endpoint, Head, RecoveryLog, currentPlan, distrusted } from '@shardmesh/pipeline'
import { encodeControl } from '@shardmesh/protocol'
import { storiesDir } from '../fixtures.ts'
import { waitFor } from './wait.ts'

/** Four honest members agree on the first coordinator (none elects itself before the others joined). */
const meshId = `distrust-${process.pid}`

describe('a peer that claims layers it does not serve', () => {
  const stops: Array<() => Promise<void>> = []
  afterEach(async () => { for (const f of stops.splice(0).reverse()) await f().catch(() => {}) })

  it('is reported by the head, distrusted mesh-wide, gets no stage, and stays distrusted under a new coordinator', async () => {
    const model = await loadModel(join(storiesDir(), 'stories260K.gguf'))
    const manifest = layerManifest(model)
    const first = await createMeshPeer({ listen: ['/ip4/127.0.0.1/tcp/0'], meshId, role: 'bootstrap', expectedMembers: 4 })
    const bootstrap = [first.getMultiaddrs()[0].toString()]
    const rest = await Promise.all([0, 1, 2].map(async () => await createMeshPeer({ listen: ['/ip4/127.0.0.1/tcp/0'], meshId, bootstrap, expectedMembers: 4 })))
    const honest: MeshNode[] = [first, ...rest]
    // the liar: a real member that announces a false profile and refuses over a real stage stream
    const liar = await createMeshPeer({ listen: ['/ip4/127.0.0.1/tcp/0'], meshId, bootstrap, eligible: false, expectedMembers: 4 })
    liar.services.mesh.setLayers([[0, model.config.nLayers]])
    const liarEndpoint = new Endpoint(liar)
    await liarEndpoint.start()
    liarEndpoint.onMessage(m => {
      if (!('control' in m) || (m.control.type !== 'prepare' && m.control.type !== 'open')) return
      void liarEndpoint.send({ peerId: m.from, addrs: [] }, encodeControl({ type: 'error', session: m.control.session, code: 'NOT_SERVING', message: 'not today' })).catch(() => {})
    })
    const liarId = liar.peerId.toString()
    stops.push(async () => { await liarEndpoint.stop(); await liar.stop() })
    const services = await Promise.all(honest.map(async node => {
      const distrust = new Distrust({ node, mesh: node.services.mesh })
      await distrust.start()
      const loop = new CoordinatorLoop({ mesh: node.services.mesh, settings: { model: 'stories', strategy: 'layer', minPeers: 3 }, manifestOf: async () => manifest, firstPlanWaitMs: 0 })
      const controller = new AbortController()
      const timer = setInterval(() => { void loop.tick(controller.signal).catch(() => {}) }, 200)
      const stop = async (): Promise<void> => { clearInterval(timer); controller.abort(); await distrust.stop(); await node.stop() }
      stops.push(stop)
      return { node, distrust, stop }
    }))
    const coordinatorOf = (nodes: MeshNode[]): string | undefined => {
      const ids = nodes.map(n => n.services.mesh.coordinator().peerId)
      return ids[0] !== null && ids.every(x => x === ids[0]) && nodes.some(n => n.peerId.toString() === ids[0] && n.services.mesh.coordinator().role === 'coordinator') ? ids[0] : undefined
    }
    const coordinator = await waitFor('a coordinator', () => coordinatorOf(honest))
    const others = services.filter(s => s.node.peerId.toString() !== coordinator)
    const [h, witness] = others
    // the head
    const endpoint = new Endpoint(h.node)
    const head = new Head({
      endpoint, mesh: h.node.services.mesh, config: model.config, tokenizer: createTokenizer(model.tokenizer!), readyTimeoutMs: 5000,
      faultTolerance: DEFAULT_FAULT_TOLERANCE, recoveries: new RecoveryLog(),
      report: (peer, reason, detail) => { void h.distrust.report(peer, reason, detail) }
    })
    await head.start()
    stops.push(async () => { await head.stop(); await endpoint.stop() })
    await waitFor('the liar announced', () => h.node.services.mesh.member(liarId)?.layers.length === 1)
    await waitFor('a plan', () => currentPlan(witness.node.services.mesh.state()))

    // it fails to serve what it claims
    const hop = { peerId: liarId, addrs: liar.getMultiaddrs().map(String), layers: [0, model.config.nLayers] as [number, number] }
    await expect(head.prepare(hop, model.config.name)).rejects.toMatchObject({ name: 'StageFailedError', code: 'NOT_SERVING' })
    // another peer sees it distrusted, with the reason and the reporter
    const entry = await waitFor('distrust seen by another peer', () => distrusted(witness.node.services.mesh.state()).get(liarId))
    expect(entry).toMatchObject({ reason: 'CLAIMED_LAYERS', by: h.node.peerId.toString() })
    expect(entry.until).toBeGreaterThan(Date.now())
    const noLiar = (node: MeshNode): boolean => {
      const plan = currentPlan(node.services.mesh.state())
      return plan !== undefined && plan.stages.every(s => s.primary !== liarId && !s.standbys.includes(liarId))
    }
    await waitFor('a plan without the liar', () => noLiar(witness.node))

    // the coordinator goes; the new one inherits the entry and keeps the liar out of its plans
    await services.find(s => s.node.peerId.toString() === coordinator)!.stop()
    const next = await waitFor('a new coordinator', () => {
      const c = coordinatorOf(others.map(s => s.node))
      return c !== undefined && c !== coordinator ? c : undefined
    })
    const nextNode = others.find(s => s.node.peerId.toString() === next)!.node
    expect(distrusted(nextNode.services.mesh.state()).get(liarId)?.reason).toBe('CLAIMED_LAYERS')
    // its own plan (the lost coordinator's stage moved) still leaves the liar out
    await waitFor('a plan by the new coordinator', () => {
      const plan = currentPlan(nextNode.services.mesh.state())
      return plan !== undefined && plan.stages.every(s => s.primary !== coordinator) && noLiar(nextNode)
    })
    expect(noLiar(witness.node)).toBe(true)
  }, 120_000)
})
