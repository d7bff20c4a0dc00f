import { join } from 'node:path'
import { createMeshPeer } from '@shardmesh/mesh'
import type { MeshNode } from '@shardmesh/mesh'
import { loadModel, progressBar } from '@shardmesh/model/node'
import { parseCid, weightsNode } from '@shardmesh/weights'
import type { ModelManifest, WeightsNode } from '@shardmesh/weights'
import type { PipelineService, PlanInput } from '@shardmesh/pipeline'
import { backendOf, localBackendsOf, openBackend } from '../backend.ts'
import { spawnLocalPeers } from '../local-peers.ts'
import type { LocalPeers } from '../local-peers.ts'
import { faultToleranceOf, localPeersOf, sessionsInFlight, startPipeline, strategyOf } from '../pipeline.ts'
import { startRecording } from '../history.ts'
import type { Recording } from '../history.ts'
import { remeasureMs } from '../remeasure.ts'
import { bootstrapHistoryPath } from './history.ts'
import { CliError } from '../errors.ts'
import { demoTokens, runDemo } from '../demo.ts'
import { meshRoutes } from '../http/mesh.ts'
import { createMetrics } from '../http/metrics.ts'
import { startHttpServer } from '../http/server.ts'
import { apiKeysOf } from '../http/auth.ts'
// browser peer page (browser-peer/) and --open-peers
import { buildPeerPage, peerPageHandler, peerPageUrl } from '../http/peer-page.ts'
import { buildDashboard, dashboard as dashboardOf, dashboardUrl } from '../http/dashboard.ts'
import { minPeersOf, openPeers, openPeersOf } from '../open-peers.ts'
import { storeDir } from './import.ts'
import { admissionHandler, admittedKey, DEFAULT_JOIN_LIFETIME, JoinTokens, joinUrl, lifetimeMs, loadOperator } from './admit.ts'
import { loadOrCreateKey } from '../peer-key.ts'
import { listenAddrs, measureCapabilities, memoryBudget, runUntilSignal } from './peer.ts'

type Values = Record<string, string | boolean | undefined>

/** Longest wait for this peer to be coordinator, publish the model and open its tokenizer. */
const HEAD_TIMEOUT_MS = 60_000
/**
 * With --local-peers, the first plan waits this long (not the pipeline's 30 s) for --min-peers:
 * the children are on their way (one that dies fails the start), and on a loaded machine
 * loading a WebGPU device and benchmarking takes them past 30 s; a plan made without them keeps
 * its ranges, the late ones only stand by.
 */
const LOCAL_PEERS_PLAN_WAIT_MS = 120_000

/** A bootstrap with its model, pipeline and local peers (what `start` and `generate --local-peers` run). */
export interface BootedMesh {
  node: MeshNode
  model: ServedModel | undefined
  pipeline: PipelineService<ModelManifest> | undefined
  local: LocalPeers | undefined
  /** `--private`: the operator's HTTP routes (admit, revoke); none for an open mesh. */
  admission: Array<ReturnType<typeof admissionHandler>>
  /** The mesh id (a private mesh's `private-<operator>`; undefined: the default mesh). */
  meshId?: string
  /** `--private`: the join token the printed peer page URL carries (compute, 24 h). */
  join?: { token: string, expires: number }
  stop: () => Promise<void>
}

export interface BootOptions {
  /**
   * May this node be coordinator? `chaos` says no, so the coordinator is a peer process it can
   * kill; the head then waits for the peers' coordinator to publish the settings. @default true
   */
  coordinator?: boolean
  /** More `shardmesh peer` flags for every local peer. */
  peerArgs?: string[]
  /** Decode speeds from the recorded history, for the coordinator's plans (`PipelineNodeInit.history`). */
  history?: () => Promise<PlanInput['history']>
}

/** Start the bootstrap node, import/open `--model`, start the pipeline (head) and spawn `--local-peers`. */
export async function bootMesh (values: Values, options: BootOptions = {}): Promise<BootedMesh> {
  const listen = listenAddrs(values, ['/ip4/127.0.0.1/tcp/0/ws', '/ip4/127.0.0.1/tcp/0'])
  const count = localPeersOf(values)
  const strategy = strategyOf(values)
  const faultTolerance = faultToleranceOf(values)
  if (count > 0 && typeof values.model !== 'string') throw new CliError('--local-peers needs --model (the model the peers serve)')
  const backends = localBackendsOf(values, count)
  const compute = await openBackend(backendOf(values))
  const capabilities = await measureCapabilities(memoryBudget(values), compute)
  // --private: the mesh of the operator key in the store; this node and its local peers hold its tickets
  const operator = values.private === true ? await loadOperator(values) : undefined
  if (operator !== undefined && typeof values['mesh-id'] === 'string' && values['mesh-id'] !== operator.meshId) throw new CliError(`--private runs mesh ${operator.meshId} (of the operator key in the store), not --mesh-id ${values['mesh-id']}`)
  const meshId = operator?.meshId ?? (typeof values['mesh-id'] === 'string' ? values['mesh-id'] : undefined)
  const admitted = operator === undefined ? undefined : await admittedKey(operator)
  const coordinator = options.coordinator !== false
  const node = await createMeshPeer({ role: 'bootstrap', relayServer: true, listen, capabilities, meshId, ...(admitted === undefined ? {} : { privateKey: admitted.key, ticket: admitted.ticket }), ...(coordinator ? {} : { eligible: false }) })
  let model: ServedModel | undefined
  let pipeline: PipelineService<ModelManifest> | undefined
  let local: LocalPeers | undefined
  const stop = async (): Promise<void> => {
    await local?.stop()
    await pipeline?.stop()
    await model?.weights.stop()
    await node.stop()
  }
  try {
    if (typeof values.model === 'string') {
      model = await serveModel(node, values)
      pipeline = await startPipeline(node, model.weights, { model: model.cid, strategy, minPeers: minPeersOf(values, count + openPeersOf(values)), head: true, faultTolerance, backend: compute.backend, firstPlanWaitMs: count > 0 ? LOCAL_PEERS_PLAN_WAIT_MS : undefined, history: options.history })
      // /v1/models lists the model from the first request (a node that may not coordinate waits for the peers' coordinator, below)
      if (coordinator) await pipeline.ready({ signal: AbortSignal.timeout(HEAD_TIMEOUT_MS) })
    }
    if (count > 0 && model !== undefined) {
      const addrs = node.getMultiaddrs().map(String)
      const bootstrap = addrs.find(a => a.includes('/ws/')) ?? addrs[0]
      const keyDir = join(storeDir(values), 'local-peers')
      const tickets = operator === undefined ? undefined : await Promise.all(Array.from({ length: count }, async (_, i) => (await admittedKey(operator, await loadOrCreateKey(join(keyDir, `peer-${i}.key`)))).ticket))
      local = await spawnLocalPeers({ count, bootstrap, model: model.cid, meshId, tickets, faultTolerance, backends, keyDir: join(storeDir(values), 'local-peers'), args: [...(options.peerArgs ?? []), ...(values.remeasure === undefined ? [] : ['--remeasure', String(values.remeasure)])], logLevel: typeof values['log-level'] === 'string' ? values['log-level'] : undefined })
    }
    if (!coordinator) await pipeline?.ready({ signal: AbortSignal.timeout(HEAD_TIMEOUT_MS) })
  } catch (err) {
    await stop()
    throw err
  }
  const joinTokens = new JoinTokens()
  const admission = operator === undefined ? [] : [admissionHandler({ operator, mesh: node.services.mesh, joinTokens })]
  // a private mesh's peer page carries a join token, so the browsers that open it are admitted
  const joinToken = operator === undefined ? undefined : joinTokens.create(['compute'], lifetimeMs(DEFAULT_JOIN_LIFETIME))
  return { node, meshId, model, pipeline, local, admission, join: joinToken, stop }
}

/** The bootstrap node: WebSockets (and TCP) listener, circuit relay server, gossipsub, HTTP API. */
export async function startCommand (values: Values): Promise<void> {
  const port = Number(values.port)
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new CliError(`--port must be 0–65535, got "${String(values.port)}"`)
  const host = String(values.host)
  const apiKeys = apiKeysOf(values)
  const opened = openPeersOf(values)
  if (opened > 0 && typeof values.model !== 'string') throw new CliError('--open-peers needs --model (the model the tabs serve)')
  localBackendsOf(values, localPeersOf(values)) // a bad --backend/--local-backends fails before the page is built
  const pageDist = await buildPeerPage() // vite build of browser-peer/ when its dist/ is missing
  const dashboardDist = await buildDashboard() // and of dashboard/
  remeasureMs(values) // a bad --remeasure fails before anything starts
  demoTokens(values['demo-tokens'])
  if (values.demo !== undefined && typeof values.model !== 'string') throw new CliError('--demo needs --model (the model the mesh serves)')
  let plannerHistory: Recording['plannerHistory'] | undefined = undefined // the coordinator plans by the history recorded below
  const mesh = await bootMesh(values, { history: async () => await plannerHistory?.() })
  const { node, model, pipeline, local } = mesh
  const recording = await startRecording(values, { node, pipeline, defaultPath: bootstrapHistoryPath(values) }).catch(async err => { await mesh.stop(); throw err })
  plannerHistory = recording.plannerHistory
  let http
  const dashboard = dashboardOf({ dist: dashboardDist, node, pipeline })
  try {
    const metrics = createMetrics({ mesh: node.services.mesh, recoveries: pipeline, sessionsInFlight: pipeline === undefined ? undefined : async () => await sessionsInFlight(pipeline), stageRejections: pipeline === undefined ? undefined : () => pipeline.endpoint.rejections() })
    http = await startHttpServer({ port, host, apiKeys, routes: meshRoutes(node.services.mesh, pipeline), handlers: [...mesh.admission, recording.handler, dashboard.handler, peerPageHandler({ dist: pageDist, addrs: () => node.getMultiaddrs().map(String), meshId: mesh.meshId }), metrics.handler, ...(pipeline === undefined ? [] : [recording.openAi(dashboard.watch(pipeline))])] })
  } catch (err) {
    await recording.stop()
    await mesh.stop()
    throw new CliError(`cannot serve HTTP on ${host}:${port}: ${(err as Error).message}`)
  }
  recording.advertise(http.url)
  const addrs = node.getMultiaddrs().map(String)
  const peers = local?.peers.map(p => p.peerId) ?? []
  const page = mesh.join === undefined ? peerPageUrl(http.url) : joinUrl(peerPageUrl(http.url), mesh.join.token)
  const tabs = opened > 0 ? await openPeers(page, opened).catch(async err => { await http.close(); await recording.stop(); await mesh.stop(); throw err }) : undefined
  if (values.json === true) {
    process.stdout.write(JSON.stringify({ peerId: node.peerId.toString(), addrs, http: http.url, page, dashboard: dashboardUrl(http.url), ...(model === undefined ? {} : { model: model.cid, name: model.name }), ...(local === undefined ? {} : { peers }), history: recording.store?.path ?? null }) + '\n')
  } else {
    process.stdout.write(`shardmesh bootstrap ${node.peerId.toString()}\n  ${http.url}  (GET /api/mesh, /api/events, /api/history, /metrics${pipeline === undefined ? '' : ', /v1/models, /v1/completions, /v1/chat/completions'})\n${addrs.map(a => `  ${a}`).join('\n')}\n` +
      (model === undefined ? '' : `  model ${model.name}: ${model.cid}\n`) +
      peers.map(p => `  local peer ${p}\n`).join('') +
      `Dashboard: ${dashboardUrl(http.url)}\n` +
      `Peer page: ${page}${tabs === undefined ? '' : `  (${opened} headless Chromium tab${opened === 1 ? '' : 's'} opened)`}\n` +
      `Join with: shardmesh peer --bootstrap ${addrs.find(a => a.includes('/ws/')) ?? addrs[0]}\n`)
  }
  if (typeof values.demo === 'string' && pipeline !== undefined) {
    await runDemo({ url: http.url, prompt: values.demo, maxTokens: demoTokens(values['demo-tokens']), apiKey: apiKeys[0], out: values.json === true ? process.stderr : process.stdout })
      .catch(err => { process.stderr.write(`${(err as Error).message}\n`) })
  }
  await runUntilSignal(node, async () => {
    await tabs?.stop()
    dashboard.stop()
    await http.close()
    await local?.stop()
    await pipeline?.stop()
    await recording.stop()
    await model?.weights.stop()
  })
}

export interface ServedModel {
  cid: string
  name: string
  weights: WeightsNode
}

/**
 * `--model`: a CID names a manifest imported before (in the store); anything else is loaded
 * and imported. Either way its blocks are provided over bitswap and its layers announced.
 */
export async function serveModel (node: MeshNode, values: Record<string, string | boolean | undefined>): Promise<ServedModel> {
  const location = String(values.model)
  const weights = weightsNode({ libp2p: node, cache: storeDir(values) })
  await weights.start()
  try {
    let cid: string | undefined
    try {
      cid = parseCid(location).toString()
    } catch (err) {
      if ((err as Error).name !== 'InvalidCidError') throw err
    }
    let manifest
    if (cid !== undefined) {
      manifest = await weights.openManifest(cid, { useMesh: false })
    } else {
      const bar = values.json === true ? undefined : progressBar(process.stderr)
      const ckpt = await loadModel(location, { tokenizerPath: typeof values.tokenizer === 'string' ? values.tokenizer : undefined, onProgress: bar })
      if (ckpt.tokenizer === undefined) throw new CliError(`${ckpt.source} has no tokenizer inside; pass --tokenizer`)
      const imported = await weights.importModel(ckpt)
      cid = imported.cid.toString()
      manifest = imported.manifest
    }
    await weights.announce(manifest)
    return { cid, name: manifest.config.name, weights }
  } catch (err) {
    await weights.stop()
    throw err
  }
}
