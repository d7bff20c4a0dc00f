/**
 * Peers that lie about their throughput. Real libp2p nodes, mesh, election and replication in
 * this process; every member answers the audit protocol and the coordinator audits them
 * (`ThroughputAudit`, as `PipelineService` runs it):
 * - an overclaimer announces 1000× the decode speed it measured and answers audits with the
 *   real benchmark: timed far below its claim twice, it is distrusted (FAILED_AUDIT);
 * - a forger announces its real speed but its benchmark answers with wrong tokens;
 * - honest peers announce what they measured and are audited without being distrusted.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { cpuBackend } from '@shardmesh/engine'
import type { Backend, ForwardOptions, Stage, StageInput, StageOutput, StageSession } from '@shardmesh/engine'
import { createMeshPeer } from '@shardmesh/mesh'
import type { Capabilities, MeshNode } from '@shardmesh/mesh'
import { Distrust, ThroughputAudit, distrusted, measureThroughput } from '@shardmesh/pipeline'
import { waitFor as waitUntil } from './wait.ts'

const waitFor = async <T>(what: string, fn: () => T | undefined | false): Promise<T> => await waitUntil(what, fn, 60_000, 100)

const meshId = `audit-${process.pid}`

describe('announced throughput is audited', () => {
  const stops: Array<() => Promise<void>> = []
  afterEach(async () => { for (const f of stops.splice(0).reverse()) await f().catch(() => {}) })

  it('distrusts a peer that overclaims or forges the benchmark, and not the honest ones', async () => {
    const backend = cpuBackend()
    const real = await measureThroughput(backend)
    const caps = (decodeTokensPerSecond: number): Capabilities => ({ runtime: { name: 'node', version: process.versions.node }, backend: { kind: 'cpu' }, memoryBytes: 1 << 30, throughput: { model: real.model, decodeTokensPerSecond } })
    const first = await createMeshPeer({ listen: ['/ip4/127.0.0.1/tcp/0'], meshId, role: 'bootstrap', expectedMembers: 3, capabilities: caps(real.decodeTokensPerSecond) })
    const bootstrap = [first.getMultiaddrs()[0].toString()]
    const rest = await Promise.all([0, 1].map(async () => await createMeshPeer({ listen: ['/ip4/127.0.0.1/tcp/0'], meshId, bootstrap, expectedMembers: 3, capabilities: caps(real.decodeTokensPerSecond) })))
    const honest: MeshNode[] = [first, ...rest]
    const overclaimer = await createMeshPeer({ listen: ['/ip4/127.0.0.1/tcp/0'], meshId, bootstrap, eligible: false, capabilities: caps(real.decodeTokensPerSecond * 1000) })
    const forger = await createMeshPeer({ listen: ['/ip4/127.0.0.1/tcp/0'], meshId, bootstrap, eligible: false, capabilities: caps(real.decodeTokensPerSecond) })
    stops.push(async () => { await overclaimer.stop() }, async () => { await forger.stop() })
    // the forger's benchmark runs on a backend that samples the wrong token at every step
    const forging: Backend = {
      name: 'forging',
      createStage: async init => {
        const stage = await backend.createStage(init)
        const forgedStage: Stage = {
          config: stage.config,
          layers: stage.layers,
          units: stage.units,
          embed: stage.embed,
          head: stage.head,
          forwardBatch: async () => { throw new Error('the forger runs no batches') },
          close: async () => { await stage.close() },
          createSession: () => {
            const session = stage.createSession()
            const forged: StageSession = {
              get position () { return session.position },
              forward: async (input: StageInput, options?: ForwardOptions): Promise<StageOutput> => {
                const out = await session.forward(input, options)
                return out.token === undefined ? out : { ...out, token: (out.token + 1) % init.config.vocabSize }
              },
              truncate: position => { session.truncate(position) },
              close: () => { session.close() }
            }
            return forged
          }
        }
        return forgedStage
      }
    }

    // every member answers audits; the honest ones also audit when they are coordinator
    const audits = await Promise.all([...honest, overclaimer, forger].map(async node => {
      const distrust = new Distrust({ node, mesh: node.services.mesh })
      await distrust.start()
      const audit = new ThroughputAudit({ node, mesh: node.services.mesh, backend: node === forger ? forging : backend, distrust, retryMs: 0, everyMs: 2000 })
      await audit.start()
      const timer = setInterval(() => { audit.tick() }, 200)
      stops.push(async () => { clearInterval(timer); await audit.stop(); await distrust.stop() })
      return { node, audit }
    }))
    for (const node of honest) stops.push(async () => { await node.stop() })

    const witness = honest[2]
    const overId = overclaimer.peerId.toString()
    const forgerId = forger.peerId.toString()
    const over = await waitFor('the overclaimer distrusted', () => distrusted(witness.services.mesh.state()).get(overId))
    expect(over.reason).toBe('FAILED_AUDIT')
    expect(over.detail).toMatch(/announced [\d.]+ tok\/s, decoded at [\d.]+ tok\/s .*strike 2 of 2/)
    const forged = await waitFor('the forger distrusted', () => distrusted(witness.services.mesh.state()).get(forgerId))
    expect(forged.reason).toBe('FAILED_AUDIT')
    expect(forged.detail).toMatch(/wrong tokens/)

    // the coordinator audited the honest members too: it timed them and checked their tokens
    const coordinator = honest.find(n => n.services.mesh.coordinator().role === 'coordinator')!
    const auditor = audits.find(a => a.node === coordinator)!.audit
    const others = honest.filter(n => n !== coordinator).map(n => n.peerId.toString())
    const records = await waitFor('the honest members audited', () => {
      const rs = auditor.audits().filter(r => others.includes(r.peer) && r.measured !== undefined)
      return rs.length === others.length ? rs : undefined
    })
    for (const r of records) {
      expect(r.verified).toBe(true)
      expect(r.measured).toBeGreaterThan(0)
    }
    const now = distrusted(witness.services.mesh.state())
    for (const id of honest.map(n => n.peerId.toString())) expect(now.has(id)).toBe(false)
    // the overclaimer's own audit answered with the real benchmark: its tokens were right, its speed was not
    const overRecord = auditor.audits().find(r => r.peer === overId)
    expect(overRecord?.verified).toBe(true)
    expect(overRecord?.measured).toBeLessThan(real.decodeTokensPerSecond * 1000 / 4)
  }, 120_000)
})
