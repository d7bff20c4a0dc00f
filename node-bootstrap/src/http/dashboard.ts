// The live dashboard (dashboard/, built by Vite into dashboard/dist) served by `shardmesh start`
// at `/dashboard/`, with its feed `GET /api/events` (events.ts) and the generation figures of
// this head (live.ts). The page itself is open like the peer page; what it shows comes from
// `/api/events` and `/api/history/*`, which need the API key when keys are set (the page sends
// `Authorization: Bearer`, taking the key from `#key=` in its URL or asking for it).
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { MeshNode } from '@shardmesh/mesh'
import type { PipelineService } from '@shardmesh/pipeline'
import type { ModelManifest } from '@shardmesh/weights'
import { buildPage, serveBuilt } from './built-page.ts'
import { eventsHandler } from './events.ts'
import { liveStats } from './live.ts'

/** The dashboard package folder. */
export const DASHBOARD_DIR = fileURLToPath(new URL('../../../dashboard/', import.meta.url))
/** Where `vite build` writes the page; SHARDMESH_DASHBOARD_DIST points `start` at another build (tests build their own). */
export const DASHBOARD_DIST = process.env.SHARDMESH_DASHBOARD_DIST ?? join(DASHBOARD_DIR, 'dist')

/** Build the dashboard with Vite into `outDir` (default DASHBOARD_DIST) when it has no index.html, or always with `rebuild`. */
export async function buildDashboard (options: { rebuild?: boolean, outDir?: string, signal?: AbortSignal } = {}): Promise<string> {
  return await buildPage(DASHBOARD_DIR, options.outDir ?? DASHBOARD_DIST, 'the dashboard', options)
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
    return await serveBuilt(req, res, dist, rest === '' ? 'index.html' : rest)
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
