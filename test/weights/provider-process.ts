/**
 * A provider in its own process (so a test can SIGKILL it, and a benchmark measures two
 * processes): a bootstrap mesh peer that imports a model into its weights node, announces
 * every layer, and optionally serves the same part bytes over plain HTTP (GET /parts/<id>,
 * CORS open) for comparison. argv[2]: JSON `ProviderInit`. Reports `ProviderReady` over IPC;
 * stops when the parent disconnects.
 */
import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { loadSpec, startPeer } from './peers.ts'
import type { ModelSpec } from './peers.ts'

export interface ProviderInit {
  model: ModelSpec
  /** Also listen on WebSockets (browsers dial ws://). */
  ws?: boolean
  /** Serve the parts over HTTP on 127.0.0.1. */
  http?: boolean
}

export interface ProviderReady {
  peerId: string
  addrs: string[]
  cid: string
  /** `http://127.0.0.1:PORT` when `http` was asked. */
  http?: string
  importMs: number
}

const init = JSON.parse(process.argv[2]) as ProviderInit
const ckpt = await loadSpec(init.model)
const peer = await startPeer({ role: 'bootstrap', relayServer: init.ws, listen: ['/ip4/127.0.0.1/tcp/0', ...(init.ws === true ? ['/ip4/127.0.0.1/tcp/0/ws'] : [])] })
const start = performance.now()
const { cid, manifest } = await peer.weights.importModel(ckpt)
const importMs = performance.now() - start
await peer.weights.announce(manifest)

let http: string | undefined
let server: ReturnType<typeof createServer> | undefined
if (init.http === true) {
  const parts = await peer.weights.readParts(manifest, manifest.parts.map(p => p.id))
  server = createServer((req, res) => {
    res.setHeader('access-control-allow-origin', '*')
    const bytes = parts.get(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname.replace(/^\/parts\//, '')))
    if (bytes === undefined) { res.statusCode = 404; res.end(); return }
    res.setHeader('content-type', 'application/octet-stream')
    res.setHeader('content-length', bytes.byteLength)
    res.end(bytes)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  http = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

const ready: ProviderReady = { peerId: peer.id, addrs: peer.node.getMultiaddrs().map(String), cid: cid.toString(), http, importMs }
process.send?.(ready)
process.on('disconnect', () => {
  server?.closeAllConnections()
  server?.close()
  void peer.stop().finally(() => process.exit(0))
})
