import { createMeshPeer } from '@shardmesh/mesh'
import type { MeshNode } from '@shardmesh/mesh'
import { loadModel, progressBar } from '@shardmesh/model/node'
import { parseCid, weightsNode } from '@shardmesh/weights'
import type { WeightsNode } from '@shardmesh/weights'
import { CliError } from '../errors.ts'
import { meshRoutes } from '../http/mesh.ts'
import { startHttpServer } from '../http/server.ts'
import { storeDir } from './import.ts'
import { listenAddrs, measureCapabilities, memoryBudget, runUntilSignal } from './peer.ts'

type Values = Record<string, string | boolean | undefined>

/** The bootstrap node: WebSockets (and TCP) listener, circuit relay server, gossipsub, HTTP API. */
export async function startCommand (values: Values): Promise<void> {
  const port = Number(values.port)
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new CliError(`--port must be 0–65535, got "${String(values.port)}"`)
  const host = String(values.host)
  const listen = listenAddrs(values, ['/ip4/127.0.0.1/tcp/0/ws', '/ip4/127.0.0.1/tcp/0'])
  const capabilities = await measureCapabilities(memoryBudget(values))
  const node = await createMeshPeer({ role: 'bootstrap', relayServer: true, listen, capabilities, meshId: typeof values['mesh-id'] === 'string' ? values['mesh-id'] : undefined })
  let http
  let model: ServedModel | undefined
  try {
    if (typeof values.model === 'string') model = await serveModel(node, values)
    http = await startHttpServer({ port, host, routes: meshRoutes(node.services.mesh) })
  } catch (err) {
    await model?.weights.stop()
    await node.stop()
    if (err instanceof Error && err.name !== 'Error') throw err
    throw new CliError(`cannot serve HTTP on ${host}:${port}: ${(err as Error).message}`)
  }
  const addrs = node.getMultiaddrs().map(String)
  if (values.json === true) {
    process.stdout.write(JSON.stringify({ peerId: node.peerId.toString(), addrs, http: http.url, ...(model === undefined ? {} : { model: model.cid }) }) + '\n')
  } else {
    process.stdout.write(`shardmesh bootstrap ${node.peerId.toString()}\n  ${http.url}  (GET /api/mesh)\n${addrs.map(a => `  ${a}`).join('\n')}\n` +
      (model === undefined ? '' : `  model ${model.name}: ${model.cid}\n`) +
      `Join with: shardmesh peer --bootstrap ${addrs.find(a => a.includes('/ws/')) ?? addrs[0]}\n`)
  }
  await runUntilSignal(node, async () => {
    await http.close()
    await model?.weights.stop()
  })
}

interface ServedModel {
  cid: string
  name: string
  weights: WeightsNode
}

/**
 * `--model`: a CID names a manifest imported before (in the store); anything else is loaded
 * and imported. Either way its blocks are provided over bitswap and its layers announced.
 */
async function serveModel (node: MeshNode, values: Record<string, string | boolean | undefined>): Promise<ServedModel> {
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
