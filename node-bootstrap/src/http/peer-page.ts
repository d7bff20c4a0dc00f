// The browser peer page (browser-peer/, built by Vite into browser-peer/dist) served by
// `shardmesh start` at `/`, with `peer.json` beside it: the bootstrap's WebSocket multiaddrs,
// which the page dials to join the mesh.
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { buildPage, serveBuilt } from './built-page.ts'

/** The browser-peer package folder. */
export const PEER_PAGE_DIR = fileURLToPath(new URL('../../../browser-peer/', import.meta.url))
/** Where `vite build` writes the page; SHARDMESH_PAGE_DIST points `start` at another build (tests build their own). */
export const PEER_PAGE_DIST = process.env.SHARDMESH_PAGE_DIST ?? join(PEER_PAGE_DIR, 'dist')

/** Build the page with Vite into `outDir` (default PEER_PAGE_DIST) when it has no index.html, or always with `rebuild`. */
export async function buildPeerPage (options: { rebuild?: boolean, outDir?: string, signal?: AbortSignal } = {}): Promise<string> {
  return await buildPage(PEER_PAGE_DIR, options.outDir ?? PEER_PAGE_DIST, 'the peer page', options)
}

/** ip4 loopback/private or localhost: a local deployment, where the page must dial ws:// and private addresses. */
function isLocal (addr: string): boolean {
  return /^\/(ip4\/(127\.|10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.)|dns4?\/localhost\/|ip6\/::1\/)/.test(addr)
}

export interface PeerPageInit {
  /** The built page. @default PEER_PAGE_DIST */
  dist?: string
  /** The node's multiaddrs (the page keeps the WebSocket ones). */
  addrs: () => string[]
  /** The mesh name (`--mesh-id`) the page joins. @default the default mesh */
  meshId?: string
}

/** An HTTP handler for `GET /`, the page's assets and `GET /peer.json`; false for anything else. */
export function peerPageHandler (init: PeerPageInit): (req: IncomingMessage, res: ServerResponse) => Promise<boolean> {
  const dist = init.dist ?? PEER_PAGE_DIST
  return async (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false
    const path = new URL(req.url ?? '/', 'http://localhost').pathname
    if (path === '/peer.json') {
      const bootstrap = init.addrs().filter(a => /\/wss?\//.test(a) || a.endsWith('/ws') || a.endsWith('/wss'))
      const body = JSON.stringify({ bootstrap, allowLocalDial: bootstrap.some(isLocal), ...(init.meshId === undefined ? {} : { meshId: init.meshId }) })
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' })
      res.end(body)
      return true
    }
    return await serveBuilt(req, res, dist, path === '/' ? 'index.html' : path.slice(1))
  }
}

/** The page's URL for people: `http://host:port/`. */
export function peerPageUrl (httpUrl: string): string {
  return `${httpUrl}/`
}
