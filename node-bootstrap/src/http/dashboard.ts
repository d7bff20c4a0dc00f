// The live dashboard (dashboard/, built by Vite into dashboard/dist) served by `shardmesh start`
// at `/dashboard/`, with its feed `GET /api/events` (events.ts) and the generation figures of
// this head (live.ts). The page itself is open like the peer page; what it shows comes from
// `/api/events` and `/api/history/*`, which need the API key when keys are set (the page sends
// `Authorization: Bearer`, taking the key from `#key=` in its URL or asking for it).
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { extname, join, normalize, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { MeshNode } from '@shardmesh/mesh'
import type { PipelineService } from '@shardmesh/pipeline'
import type { ModelManifest } from '@shardmesh/weights'
import { CliError } from '../errors.ts'
import { eventsHandler } from './events.ts'
import { liveStats } from './live.ts'

/** The dashboard package folder. */
export const DASHBOARD_DIR = fileURLToPath(new URL('../../../dashboard/', import.meta.url))
/** Where `vite build` writes the page; SHARDMESH_DASHBOARD_DIST points `start` at another build (tests build their own). */
export const DASHBOARD_DIST = process.env.SHARDMESH_DASHBOARD_DIST ?? join(DASHBOARD_DIR, 'dist')

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml'
}

/** Build the dashboard with Vite into `outDir` (default DASHBOARD_DIST) when it has no index.html, or always with `rebuild`. */
export async function buildDashboard (options: { rebuild?: boolean, outDir?: string, signal?: AbortSignal } = {}): Promise<string> {
  const outDir = options.outDir ?? DASHBOARD_DIST
  if (options.rebuild !== true && existsSync(join(outDir, 'index.html'))) return outDir
  const vite = join(DASHBOARD_DIR, 'node_modules/vite/bin/vite.js')
  if (!existsSync(vite)) throw new CliError(`vite is not installed in ${DASHBOARD_DIR} (run pnpm install)`)
  const child = spawn(process.execPath, [vite, 'build', '--logLevel', 'warn', '--outDir', outDir, '--emptyOutDir'], { cwd: DASHBOARD_DIR, stdio: ['ignore', 'pipe', 'pipe'], signal: options.signal })
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr.on('data', (d: Buffer) => { out += d.toString() })
  const [code] = await once(child, 'exit') as [number | null]
  if (code !== 0 || !existsSync(join(outDir, 'index.html'))) throw new CliError(`vite build of the dashboard failed (exit ${String(code)}): ${out.slice(-2000)}`)
  return outDir
}

/** `GET /dashboard` (→ `/dashboard/`), `/dashboard/` and its assets; false for anything else. */
export function dashboardPageHandler (dist: string = DASHBOARD_DIST): (req: IncomingMessage, res: ServerResponse) => Promise<boolean> {
  return async (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false
    const url = new URL(req.url ?? '/', 'http://localhost')
    if (url.pathname === '/dashboard') {
      // the page's assets are relative (`./assets/…`): they resolve under /dashboard/ only
      res.writeHead(302, { location: `/dashboard/${url.search}`, 'content-length': 0 })
      res.end()
      return true
    }
    if (!url.pathname.startsWith('/dashboard/')) return false
    const rest = url.pathname.slice('/dashboard/'.length)
    const file = rest === '' ? 'index.html' : rest
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

export interface Dashboard {
  /** The page and `GET /api/events`, for the HTTP server's handler list. */
  handler: (req: IncomingMessage, res: ServerResponse) => Promise<boolean>
  /** The pipeline with its generations counted for the live figures: give it to the OpenAI handler. */
  watch: <P extends Pick<PipelineService<ModelManifest>, 'models'>>(pipeline: P) => Pick<P, 'models'>
  /** End the event streams (before the HTTP server closes). */
  stop: () => void
}

/** The dashboard of a node: its page (built in `dist`), its event feed and its head's live figures. */
export function dashboard (init: { dist: string, node: Pick<MeshNode, 'peerId' | 'services'>, pipeline?: PipelineService<ModelManifest> }): Dashboard {
  const live = init.pipeline === undefined ? undefined : liveStats()
  const events = eventsHandler({ self: init.node.peerId.toString(), mesh: init.node.services.mesh, head: init.pipeline, live })
  const page = dashboardPageHandler(init.dist)
  return {
    handler: async (req, res) => await events.handler(req, res) || await page(req, res),
    watch: pipeline => {
      if (live === undefined) return pipeline
      const models = live.models(() => pipeline.models())
      return { models }
    },
    stop: () => { events.stop() }
  }
}

/** The dashboard's URL for people: `http://host:port/dashboard/`. */
export function dashboardUrl (httpUrl: string): string {
  return `${httpUrl}/dashboard/`
}
