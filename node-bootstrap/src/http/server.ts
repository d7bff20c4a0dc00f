import { createServer } from 'node:http'
import { once } from 'node:events'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

/** A route answers with a JSON-serializable body (status 200). */
export type Route = (req: IncomingMessage) => unknown

export interface HttpServerInit {
  /** 0 picks any free port. */
  port: number
  host: string
  /** Keyed by `METHOD /path`, e.g. `GET /api/mesh`. */
  routes: Record<string, Route>
  /** Tried first, in order; each resolves true when it answered (e.g. the OpenAI handler). */
  handlers?: Array<(req: IncomingMessage, res: ServerResponse) => Promise<boolean>>
}

export interface HttpServer {
  url: string
  close: () => Promise<void>
}

function send (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers })
  res.end(text)
}

function error (res: ServerResponse, status: number, code: string, message: string, headers?: Record<string, string>): void {
  send(res, status, { error: { code, message } }, headers)
}

/** A small JSON HTTP server over node:http: routes by method and path, JSON errors for the rest. */
export async function startHttpServer (init: HttpServerInit): Promise<HttpServer> {
  const server = createServer((req, res) => {
    void (async () => {
      for (const handler of init.handlers ?? []) {
        if (await handler(req, res)) return
      }
      routeJson(req, res)
    })().catch(err => {
      if (!res.headersSent) error(res, 500, 'internal', (err as Error).message)
      else res.destroy()
    })
  })
  const routeJson = (req: IncomingMessage, res: ServerResponse): void => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname
    const route = init.routes[`${req.method ?? 'GET'} ${path}`]
    if (route === undefined) {
      const allowed = Object.keys(init.routes).filter(k => k.endsWith(` ${path}`)).map(k => k.split(' ')[0])
      if (allowed.length > 0) error(res, 405, 'method_not_allowed', `${req.method ?? ''} is not allowed on ${path}`, { allow: allowed.join(', ') })
      else error(res, 404, 'not_found', `no route for ${req.method ?? ''} ${path}`)
      return
    }
    try {
      send(res, 200, route(req))
    } catch (err) {
      error(res, 500, 'internal', (err as Error).message)
    }
  }
  server.listen(init.port, init.host)
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  const host = init.host.includes(':') ? `[${init.host}]` : init.host
  return {
    url: `http://${host}:${port}`,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>(resolve => { server.close(() => { resolve() }) })
    }
  }
}
