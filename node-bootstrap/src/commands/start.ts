import { createMeshPeer } from '@shardmesh/mesh'
import { CliError } from '../errors.ts'
import { meshRoutes } from '../http/mesh.ts'
import { startHttpServer } from '../http/server.ts'
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
  try {
    http = await startHttpServer({ port, host, routes: meshRoutes(node.services.mesh) })
  } catch (err) {
    await node.stop()
    throw new CliError(`cannot serve HTTP on ${host}:${port}: ${(err as Error).message}`)
  }
  const addrs = node.getMultiaddrs().map(String)
  if (values.json === true) {
    process.stdout.write(JSON.stringify({ peerId: node.peerId.toString(), addrs, http: http.url }) + '\n')
  } else {
    process.stdout.write(`shardmesh bootstrap ${node.peerId.toString()}\n  ${http.url}  (GET /api/mesh)\n${addrs.map(a => `  ${a}`).join('\n')}\n` +
      `Join with: shardmesh peer --bootstrap ${addrs.find(a => a.includes('/ws/')) ?? addrs[0]}\n`)
  }
  await runUntilSignal(node, http.close)
}
