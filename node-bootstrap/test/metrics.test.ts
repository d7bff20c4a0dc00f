import { describe, expect, it } from 'vitest'
import { PLAN_KEY, RecoveryLog } from '@shardmesh/pipeline'
import type { FaultTolerance, RecoveryEvent } from '@shardmesh/pipeline'
import type { MeshState, MeshView } from '@shardmesh/mesh'
import { createMetrics } from '../src/http/metrics.ts'
import { samples } from './helpers.ts'

const event = (over: Partial<RecoveryEvent>): RecoveryEvent => ({
  at: Date.now(),
  session: 's1',
  failed: ['12D3KooWA'],
  stages: [1],
  class: 'CRASH',
  level: 'high',
  strategy: 'parallel',
  path: 'replay',
  detectionMs: 40,
  stallMs: 180,
  tokensReplayed: 12,
  ok: true,
  ...over
})

/** A mesh with three members (one dead) and a plan v4 of two stages, as `view`/`state` return them. */
const mesh = {
  view: (): MeshView => ({
    coordinator: 'c',
    term: 3,
    stateVersion: 9,
    peers: ['alive', 'alive', 'dead'].map((status, i) => ({ peerId: `p${i}`, role: 'peer', runtime: { name: 'node', version: '22' }, backend: { kind: 'cpu' }, status, layers: [], lastSeenMs: 0 }))
  }) as unknown as MeshView,
  state: (): MeshState => ({ version: 9, term: 3, data: { [PLAN_KEY]: { version: 4, strategy: 'layer', model: 'm', nLayers: 5, stages: [{ range: [0, 2] }, { range: [2, 5] }] } } }) as unknown as MeshState,
  rejections: () => ({ unsigned: 2 })
}

describe('Prometheus metrics', () => {
  it('count every recovery event by class/strategy/path/ok, with stall and detection histograms and replayed tokens', async () => {
    const log = new RecoveryLog()
    const ft: FaultTolerance = { level: 'high', recovery: 'parallel' }
    const source = { faultTolerance: ft, recoveries: () => log.list(), onRecovery: (fn: (e: RecoveryEvent) => void) => log.onRecovery(fn) }
    log.record(event({ stallMs: 180, detectionMs: 40, tokensReplayed: 12 })) // before the metrics exist: read from the list
    const metrics = createMetrics({ mesh, recoveries: source, sessionsInFlight: () => 2, processMetrics: false })
    log.record(event({ stallMs: 1200, detectionMs: 600, tokensReplayed: 30, path: 'reprefill', strategy: 'failover', class: 'CONNECTION' }))
    log.record(event({ ok: false, path: 'none', stallMs: 0, detectionMs: 15, tokensReplayed: 0, error: 'no standby', level: 'none' }))

    const s = samples(await metrics.text())
    expect(s.get('shardmesh_recoveries_total{class="CRASH",strategy="parallel",path="replay",ok="true"}')).toBe(1)
    expect(s.get('shardmesh_recoveries_total{class="CONNECTION",strategy="failover",path="reprefill",ok="true"}')).toBe(1)
    expect(s.get('shardmesh_recoveries_total{class="CRASH",strategy="parallel",path="none",ok="false"}')).toBe(1)
    // stall only of recoveries that resumed; 180 falls in le=250, 1200 in le=1500
    expect(s.get('shardmesh_recovery_stall_ms_count{strategy="parallel",path="replay"}')).toBe(1)
    expect(s.get('shardmesh_recovery_stall_ms_bucket{le="100",strategy="parallel",path="replay"}')).toBe(0)
    expect(s.get('shardmesh_recovery_stall_ms_bucket{le="250",strategy="parallel",path="replay"}')).toBe(1)
    expect(s.get('shardmesh_recovery_stall_ms_sum{strategy="failover",path="reprefill"}')).toBe(1200)
    expect(s.get('shardmesh_recovery_stall_ms_bucket{le="1000",strategy="failover",path="reprefill"}')).toBe(0)
    expect(s.get('shardmesh_recovery_stall_ms_bucket{le="1500",strategy="failover",path="reprefill"}')).toBe(1)
    expect([...s.keys()].some(k => k.startsWith('shardmesh_recovery_stall_ms_count{') && k.includes('path="none"'))).toBe(false)
    expect(s.get('shardmesh_recovery_detection_ms_count{class="CRASH"}')).toBe(2)
    expect(s.get('shardmesh_recovery_detection_ms_sum{class="CRASH"}')).toBe(55)
    expect(s.get('shardmesh_recovery_tokens_replayed_total{path="replay"}')).toBe(12)
    expect(s.get('shardmesh_recovery_tokens_replayed_total{path="reprefill"}')).toBe(30)
    expect(s.get('shardmesh_fault_tolerance_info{level="high",recovery="parallel"}')).toBe(1)

    // gauges are read from the mesh at scrape time
    expect(s.get('shardmesh_members{status="alive"}')).toBe(2)
    expect(s.get('shardmesh_members{status="dead"}')).toBe(1)
    expect(s.get('shardmesh_members{status="suspect"}')).toBe(0)
    expect(s.get('shardmesh_plan_version')).toBe(4)
    expect(s.get('shardmesh_plan_stages')).toBe(2)
    expect(s.get('shardmesh_term')).toBe(3)
    expect(s.get('shardmesh_state_version')).toBe(9)
    expect(s.get('shardmesh_sessions_in_flight')).toBe(2)
    expect(s.get('shardmesh_mesh_rejected_messages{reason="unsigned"}')).toBe(2)

    // after stop, new events are no longer counted
    metrics.stop()
    log.record(event({}))
    expect(samples(await metrics.text()).get('shardmesh_recoveries_total{class="CRASH",strategy="parallel",path="replay",ok="true"}')).toBe(1)
  })

  it('keep each registry apart: two nodes in one process never share a count', async () => {
    const a = new RecoveryLog()
    const b = new RecoveryLog()
    const ft: FaultTolerance = { level: 'medium', recovery: 'progressive' }
    const ma = createMetrics({ mesh, recoveries: { faultTolerance: ft, recoveries: () => a.list(), onRecovery: fn => a.onRecovery(fn) }, processMetrics: false })
    const mb = createMetrics({ mesh, recoveries: { faultTolerance: ft, recoveries: () => b.list(), onRecovery: fn => b.onRecovery(fn) } })
    a.record(event({ strategy: 'progressive' }))
    expect(samples(await ma.text()).get('shardmesh_recoveries_total{class="CRASH",strategy="progressive",path="replay",ok="true"}')).toBe(1)
    const sb = samples(await mb.text())
    expect([...sb.keys()].some(k => k.startsWith('shardmesh_recoveries_total{'))).toBe(false)
    expect([...sb.keys()].some(k => k.startsWith('shardmesh_process_resident_memory_bytes'))).toBe(true)
    // a node without a head exports no recovery series and no in-flight gauge
    const bare = samples(await createMetrics({ mesh, processMetrics: false }).text())
    expect([...bare.keys()].some(k => k.includes('recover') || k.includes('in_flight') || k.includes('fault_tolerance'))).toBe(false)
    expect(bare.get('shardmesh_members{status="alive"}')).toBe(2)
  })
})
