// The browser peer page (browser-peer/, built by Vite into browser-peer/dist) served by
// `shardmesh start` at `/`, with `peer.json` beside it: the bootstrap's WebSocket multiaddrs,
// which the page dials to join the mesh.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { extname, join, normalize, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { CliError } from '../errors.ts'

/** The browser-peer package folder. */
export const PEER_PAGE_DIR = fileURLToPath(new URL('../../../browser-peer/', import.meta.url))
/** Where `vite build` writes the page; SHARDMESH_PAGE_DIST points `start` at another build (tests build their own). */
export const PEER_PAGE_DIST = process.env.SHARDMESH_PAGE_DIST ?? join(PEER_PAGE_DIR, 'dist')

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.svg': 'image/svg+xml'
}

/**
 * Build the page with Vite into `outDir` (default PEER_PAGE_DIST) when it has no index.html,
 * or always with `rebuild`. Vite is a devDependency of browser-peer; the build runs in a
 * child process on this Node.
 */
export async function buildPeerPage (options: { rebuild?: boolean, outDir?: string, signal?: AbortSignal } = {}): Promise<string> {
  const outDir = options.outDir ?? PEER_PAGE_DIST
  if (options.rebuild !== true && existsSync(join(outDir, 'index.html'))) return outDir
  const vite = join(PEER_PAGE_DIR, 'node_modules/vite/bin/vite.js')
  if (!existsSync(vite)) throw new CliError(`vite is not installed in ${PEER_PAGE_DIR} (run pnpm install)`)
  const child = spawn(process.execPath, [vite, 'build', '--logLevel', 'warn', '--outDir', outDir, '--emptyOutDir'], { cwd: PEER_PAGE_DIR, stdio: ['ignore', 'pipe', 'pipe'], signal: options.signal })
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr.on('data', (d: Buffer) => { out += d.toString() })
  const [code] = await once(child, 'exit') as [number | null]
  if (code !== 0 || !existsSync(join(outDir, 'index.html'))) throw new CliError(`vite build of the peer page failed (exit ${String(code)}): ${out.slice(-2000)}`)
  return outDir
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
    const file = path === '/' ? 'index.html' : path.slice(1)
    if (file !== 'index.html' && !file.startsWith('assets/')) return false
    const full = normalize(join(dist, file))
    if (!full.startsWith(dist + sep)) return false
    let body: Buffer
    try {
      body = await readFile(full)
    } catch {
      return false
    }
    res.writeHead(200, { 'content-type': TYPES[extname(full)] ?? 'application/octet-stream', 'content-length': body.length, 'cache-control': file === 'index.html' ? 'no-cache' : 'max-age=31536000, immutable' })
    res.end(req.method === 'HEAD' ? undefined : body)
    return true
  }
}

/** The page's URL for people: `http://host:port/`. */
export function peerPageUrl (httpUrl: string): string {
  return `${httpUrl}/`
}
