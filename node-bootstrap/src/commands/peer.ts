import { totalmem } from 'node:os'
import { createMeshPeer } from '@shardmesh/mesh'
import { BENCH_MODEL, measureThroughput } from '@shardmesh/pipeline'
import { parseCid, weightsNode } from '@shardmesh/weights'
import { backendOf, openBackend } from '../backend.ts'
import type { ComputeBackend } from '../backend.ts'
import { CliError } from '../errors.ts'
import { peerHistoryPath, startRecording } from '../history.ts'
import type { Recording } from '../history.ts'
import { meshRoutes } from '../http/mesh.ts'
import { createMetrics } from '../http/metrics.ts'
import { startHttpServer } from '../http/server.ts'
import { apiKeysOf } from '../http/auth.ts'
import type { HttpServer } from '../http/server.ts'
import { EXIT_WITH_STDIN } from '../local-peers.ts'
import { faultToleranceOf, minPeersFlag, sessionsInFlight, startPipeline, strategyOf } from '../pipeline.ts'
import { logger } from '../log.ts'
import { loadOrCreateKey } from '../peer-key.ts'
import { remeasureMs, remeasureWhileIdle } from '../remeasure.ts'
import { ticketOf } from './admit.ts'
import type { Capabilities, MeshNode } from '@shardmesh/mesh'

type Values = Record<string, string | boolean | undefined>

/** SIGINT/SIGTERM: longest clean stop (sessions, HTTP, local peers, history) before the process exits anyway. */
const STOP_GRACE_MS = 15_000
/** `--port`: longest wait for the mesh's model before the HTTP API opens anyway. */
const HEAD_WAIT_MS = 30_000

/**
 * What this Node peer offers: the runtime, its backend (`--backend`: kind, and the WebGPU
 * adapter), a memory budget and the decode tokens/s of a short real engine run on that
 * backend (tiny synthetic model, all layers, greedy).
 */
export async function measureCapabilities (memoryBytes: number, compute: ComputeBackend): Promise<Capabilities> {
  return {
    runtime: { name: 'node', version: process.versions.node },
    backend: compute.announced,
    memoryBytes,
    throughput: await measureThroughput(compute.backend)
  }
}

/** `--listen a,b` → multiaddrs, or the default. */
export function listenAddrs (values: Values, fallback: string[]): string[] {
  const raw = values.listen
  if (raw === undefined || raw === true) return fallback
  const addrs = String(raw).split(',').map(s => s.trim()).filter(s => s.length > 0)
  if (addrs.length === 0 || !addrs.every(a => a.startsWith('/'))) throw new CliError(`--listen takes comma-separated multiaddrs, got "${String(raw)}"`)
  return addrs
}

export function memoryBudget (values: Values): number {
  if (values.memory === undefined) return Math.floor(totalmem() / 2)
  const mb = Number(values.memory)
  if (!Number.isFinite(mb) || mb <= 0) throw new CliError(`--memory must be a number of MiB > 0, got "${String(values.memory)}"`)
  return Math.floor(mb * 1024 * 1024)
}

/** Log role changes and member status changes; resolve on SIGINT/SIGTERM after a clean stop. */
export async function runUntilSignal (node: MeshNode, cleanup: () => Promise<void> = async () => {}): Promise<void> {
  const log = logger('mesh')
  const mesh = node.services.mesh
  mesh.addEventListener('coordinator', e => { log.info(`term ${e.detail.term}: coordinator ${e.detail.coordinator ?? 'none'} (this peer: ${e.detail.role})`) })
  mesh.addEventListener('member', e => { log.debug(`member ${e.detail.peerId} ${e.detail.status} (${e.detail.reason})`) })
  mesh.addEventListener('error', e => { log.warn(`internal error: ${e.detail.message}`) })
  await new Promise<void>(resolve => {
    process.once('SIGINT', () => { resolve() })
    process.once('SIGTERM', () => { resolve() })
  })
  log.info('stopping')
  // a clean stop, bounded: then exit, whatever timers (a bitswap send's 60 s timeout, a
  // retry's back-off) would otherwise keep the process alive after its work is done
  let timer: ReturnType<typeof setTimeout> | undefined
  const stopped = (async () => { await cleanup(); await node.stop() })().then(() => 'stopped' as const, (err: unknown) => err as Error)
  const outcome = await Promise.race([stopped, new Promise<'late'>(resolve => { timer = setTimeout(() => { resolve('late') }, STOP_GRACE_MS) })])
  clearTimeout(timer)
  if (outcome === 'late') log.warn(`a clean stop took over ${STOP_GRACE_MS / 1000} s; exiting without it`)
  else if (outcome instanceof Error) { log.warn(`stopping failed: ${outcome.message}`); process.exitCode = 1 }
  process.exit()
}

export async function peerCommand (values: Values): Promise<void> {
  if (typeof values.bootstrap !== 'string' || values.bootstrap.trim() === '') throw new CliError('--bootstrap MULTIADDR is required (printed by `shardmesh start`)')
  const bootstrap = values.bootstrap.split(',').map(s => s.trim()).filter(s => s.length > 0)
  if (!bootstrap.every(a => a.startsWith('/') && a.includes('/p2p/'))) throw new CliError(`--bootstrap takes multiaddrs ending in /p2p/<peer id>, got "${values.bootstrap}"`)
  const listen = listenAddrs(values, ['/ip4/127.0.0.1/tcp/0', '/ip4/127.0.0.1/tcp/0/ws'])
  const faultTolerance = faultToleranceOf(values)
  const minPeers = minPeersFlag(values)
  const remeasureEvery = remeasureMs(values)
  const compute = await openBackend(backendOf(values))
  const capabilities = await measureCapabilities(memoryBudget(values), compute)
  const port = values.port === undefined ? undefined : Number(values.port)
  if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) throw new CliError(`--port must be 0–65535, got "${String(values.port)}"`)
  let model: string | undefined
  if (typeof values.model === 'string') {
    try {
      model = parseCid(values.model).toString()
    } catch {
      throw new CliError(`--model takes the manifest CID the bootstrap printed, got "${values.model}"`)
    }
  }
  const privateKey = typeof values.key === 'string' ? await loadOrCreateKey(values.key) : undefined
  // --ticket: a private mesh's admission; its mesh id comes with it
  const admission = ticketOf(values)
  if (admission !== undefined && typeof values['mesh-id'] === 'string' && values['mesh-id'] !== admission.meshId) throw new CliError(`--ticket is for mesh ${admission.meshId}, not --mesh-id ${values['mesh-id']}`)
  const meshId = admission?.meshId ?? (typeof values['mesh-id'] === 'string' ? values['mesh-id'] : undefined)
  const node = await createMeshPeer({ bootstrap, listen, capabilities, privateKey, meshId, ticket: admission?.ticket })
  const weights = weightsNode({ libp2p: node })
  let pipeline
  let http: HttpServer | undefined
  let recording: Recording | undefined
  try {
    await weights.start()
    // the coordinator (usually the bootstrap) publishes the model and plan; this peer serves its range
    pipeline = await startPipeline(node, weights, { model, strategy: strategyOf(values), minPeers, head: port !== undefined, faultTolerance, backend: compute.backend, history: async () => await recording?.plannerHistory() })
    recording = await startRecording(values, { node, pipeline, defaultPath: peerHistoryPath(values, node.peerId.toString()) })
    if (port !== undefined) {
      // the API lists the mesh's model from the first request: wait (bounded) for it and its tokenizer
      await pipeline.ready({ signal: AbortSignal.timeout(HEAD_WAIT_MS) }).catch(() => { logger('pipeline').warn('no model in the mesh yet; /v1/models is empty until one is published') })
      const p = pipeline
      const metrics = createMetrics({ mesh: node.services.mesh, recoveries: p, sessionsInFlight: async () => await sessionsInFlight(p), stageRejections: () => p.endpoint.rejections() })
      http = await startHttpServer({ port, host: String(values.host ?? '127.0.0.1'), apiKeys: apiKeysOf(values), routes: meshRoutes(node.services.mesh, p), handlers: [recording.handler, metrics.handler, recording.openAi(p)] })
      recording.advertise(http.url)
    }
  } catch (err) {
    await recording?.stop()
    await pipeline?.stop()
    await weights.stop()
    await node.stop()
    throw err
  }
  const addrs = node.getMultiaddrs().map(String)
  if (values.json === true) {
    process.stdout.write(JSON.stringify({ peerId: node.peerId.toString(), addrs, capabilities, ...(http === undefined ? {} : { http: http.url }) }) + '\n')
  } else {
    process.stdout.write(`shardmesh peer ${node.peerId.toString()}\n${addrs.map(a => `  ${a}`).join('\n')}\n` +
      (http === undefined ? '' : `  ${http.url}  (GET /api/mesh, /api/history, /metrics, /v1/models, /v1/completions, /v1/chat/completions)\n`) +
      `  ${compute.label}: decode ${capabilities.throughput?.decodeTokensPerSecond ?? 0} tok/s (${BENCH_MODEL})\n`)
  }
  if (process.env[EXIT_WITH_STDIN] === '1') {
    // spawned by `start --local-peers`: stop when the parent goes away
    process.stdin.on('end', () => { process.kill(process.pid, 'SIGTERM') })
    process.stdin.on('error', () => { process.kill(process.pid, 'SIGTERM') })
    process.stdin.resume()
  }
  // a peer slowed after it joined is seen: its benchmark re-runs while idle, announced, recorded by every node
  const remeasure = remeasureWhileIdle({ mesh: node.services.mesh, self: node.peerId.toString(), measure: async () => await measureCapabilities(capabilities.memoryBytes, compute), everyMs: remeasureEvery })
  const p = pipeline
  const r = recording
  await runUntilSignal(node, async () => {
    remeasure.stop()
    await http?.close()
    await p.stop()
    await r.stop()
    await weights.stop()
    process.stdin.destroy() // let the event loop end
  })
}
