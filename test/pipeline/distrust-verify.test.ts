/**
 * The coordinator checks a report before it distrusts anyone: a head that reports an honest
 * peer as CLAIMED_LAYERS is not believed (the coordinator's own `prepare` of the peer's
 * announced range is answered), and a real liar's report is confirmed (the coordinator's
 * `prepare` is refused too). Real libp2p nodes, mesh, election and replication in this
 * process; the honest peer runs a real stage server on stories260K.
 */
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { cpuBackend } from '@shardmesh/engine'
import { createMeshPeer } from '@shardmesh/mesh'
import type { MeshNode } from '@shardmesh/mesh'
import { loadModel } from '@shardmesh/model/node'
import { Distrust, Endpoint, StageServer, distrusted, verifyReports } from '@shardmesh/pipeline'
import { encodeControl } from '@shardmesh/protocol'
import { storiesDir } from '../fixtures.ts'
import { waitFor } from './wait.ts'

const meshId = `distrust-verify-${process.pid}`

describe('the coordinator verifies distrust reports', () => {
  const stops: Array<() => Promise<void>> = []
  afterEach(async () => { for (const f of stops.splice(0).reverse()) await f().catch(() => {}) })

  it('drops a report against an honest peer and confirms one against a liar', async () => {
    const model = await loadModel(join(storiesDir(), 'stories260K.gguf'))
    const all: [number, number] = [0, model.config.nLayers]
    const first = await createMeshPeer({ listen: ['/ip4/127.0.0.1/tcp/0'], meshId, role: 'bootstrap', expectedMembers: 3 })
    const bootstrap = [first.getMultiaddrs()[0].toString()]
    const rest = await Promise.all([0, 1].map(async () => await createMeshPeer({ listen: ['/ip4/127.0.0.1/tcp/0'], meshId, bootstrap, expectedMembers: 3 })))
    const honest: MeshNode[] = [first, ...rest]
    // an honest peer that serves every layer of the model from a real stage server
    const server = await createMeshPeer({ listen: ['/ip4/127.0.0.1/tcp/0'], meshId, bootstrap, eligible: false })
    const serverEndpoint = new Endpoint(server)
    const stageServer = new StageServer({ endpoint: serverEndpoint, backend: cpuBackend(), config: model.config, tensors: model.tensors })
    await stageServer.start()
    await stageServer.serve(all)
    server.services.mesh.setLayers([all])
    stops.push(async () => { await stageServer.stop(); await server.stop() })
    // a liar: announces every layer and refuses them
    const liar = await createMeshPeer({ listen: ['/ip4/127.0.0.1/tcp/0'], meshId, bootstrap, eligible: false })
    liar.services.mesh.setLayers([all])
    const liarEndpoint = new Endpoint(liar)
    await liarEndpoint.start()
    liarEndpoint.onMessage(m => {
      if (!('control' in m) || m.control.type !== 'prepare') return
      void liarEndpoint.send({ peerId: m.from, addrs: [] }, encodeControl({ type: 'error', session: m.control.session, code: 'NOT_SERVING', message: 'not today' })).catch(() => {})
    })
    stops.push(async () => { await liarEndpoint.stop(); await liar.stop() })
    const services = await Promise.all(honest.map(async node => {
      const endpoint = new Endpoint(node)
      await endpoint.start()
      const distrust = new Distrust({ node, mesh: node.services.mesh, verify: verifyReports({ endpoint, mesh: node.services.mesh, model: async () => model.config.name }) })
      await distrust.start()
      stops.push(async () => { await distrust.stop(); await endpoint.stop(); await node.stop() })
      return { node, distrust }
    }))
    const coordinator = await waitFor('a coordinator', () => services.find(s => s.node.services.mesh.coordinator().role === 'coordinator' && honest.every(n => n.services.mesh.coordinator().peerId === s.node.peerId.toString())))
    const reporter = services.find(s => s !== coordinator)!
    const witness = services.find(s => s !== coordinator && s !== reporter)!
    const serverId = server.peerId.toString()
    const liarId = liar.peerId.toString()
    await waitFor('both announced', () => coordinator.node.services.mesh.member(serverId)?.layers.length === 1 && coordinator.node.services.mesh.member(liarId)?.layers.length === 1)

    // a head lies about the honest peer: the coordinator's own prepare is answered, the report dropped
    await reporter.distrust.report(serverId, 'CLAIMED_LAYERS', 'a lie about an honest peer')
    await waitFor('the report checked and dropped', () => coordinator.distrust.rejections().UNCONFIRMED === 1)
    expect(distrusted(coordinator.node.services.mesh.state()).has(serverId)).toBe(false)

    // the liar's report is confirmed: the coordinator's prepare is refused as well
    await reporter.distrust.report(liarId, 'CLAIMED_LAYERS', 'refused [0, 5)')
    const entry = await waitFor('the liar distrusted, seen by another peer', () => distrusted(witness.node.services.mesh.state()).get(liarId))
    expect(entry).toMatchObject({ reason: 'CLAIMED_LAYERS', by: reporter.node.peerId.toString() })
    expect(distrusted(witness.node.services.mesh.state()).has(serverId)).toBe(false)
    expect(coordinator.distrust.rejections().UNCONFIRMED).toBe(1)
  }, 120_000)
})
