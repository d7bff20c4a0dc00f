import { createServer } from 'node:http'
import { once } from 'node:events'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { ApiError } from '@shardmesh/pipeline'
import { apiKeyCheck, isOpenPath } from './auth.ts'

/** A route answers with a JSON-serializable body (status 200), or throws an `ApiError`. */
export type Route = (req: IncomingMessage) => unknown

/**
 * Bytes of a response buffered in this process before a write reports backpressure: a streaming
 * response (SSE) then waits until the client has read them. Node's default is 64 KiB.
 */
export const RESPONSE_HIGH_WATER_MARK = 16 * 1024

export interface HttpServerInit {
  /** 0 picks any free port. */
  port: number
  host: string
  /** Listen on this Unix socket instead of `host:port` (e.g. behind a reverse proxy). */
  path?: string
  /** Keyed by `METHOD /path`, e.g. `GET /api/mesh`. */
  routes: Record<string, Route>
  /** Tried first, in order; each resolves true when it answered (e.g. the OpenAI handler). */
  handlers?: Array<(req: IncomingMessage, res: ServerResponse) => Promise<boolean>>
  /** API keys (`Authorization: Bearer KEY`) for every path but the peer page's (see `isOpenPath`). @default none: open */
  apiKeys?: string[]
  /** @default RESPONSE_HIGH_WATER_MARK */
  highWaterMark?: number
}

export interface HttpServer {
  /** `http://host:port`, or `unix:PATH` for a Unix socket. */
  url: string
  close: () => Promise<void>
}

function send (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers })
  res.end(text)
}

/** Every error of every route in one envelope: `{ error: { message, type, param, code } }` (OpenAI's). */
function error (res: ServerResponse, err: ApiError, headers?: Record<string, string>): void {
  send(res, err.status, err.body(), headers)
}

const asApiError = (err: unknown): ApiError => err instanceof ApiError ? err : new ApiError(500, (err as Error).message, { code: 'internal' })

/** What node:http answers itself on a request it cannot parse, in the same envelope. */
function clientError (err: Error & { code?: string }, socket: Socket): void {
  if (!socket.writable) { socket.destroy(); return }
  const [status, reason] = err.code === 'HPE_HEADER_OVERFLOW' ? [431, 'Request Header Fields Too Large'] : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'Request Timeout'] : [400, 'Bad Request']
  const body = JSON.stringify(new ApiError(status, `the HTTP request could not be read: ${err.code ?? err.message}`, { code: status === 400 ? 'bad_request' : status === 431 ? 'headers_too_large' : 'request_timeout' }).body())
  socket.end(`HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`)
}

/** A small JSON HTTP server over node:http: API keys, routes by method and path, one error envelope. */
export async function startHttpServer (init: HttpServerInit): Promise<HttpServer> {
  const check = init.apiKeys !== undefined && init.apiKeys.length > 0 ? apiKeyCheck(init.apiKeys) : undefined
  const server = createServer({ highWaterMark: init.highWaterMark ?? RESPONSE_HIGH_WATER_MARK }, (req, res) => {
    void (async () => {
      const denied = check === undefined || isOpenPath(new URL(req.url ?? '/', 'http://localhost').pathname) ? undefined : check(req)
      if (denied !== undefined) { error(res, denied, { 'www-authenticate': 'Bearer' }); return }
      for (const handler of init.handlers ?? []) {
        if (await handler(req, res)) return
      }
      routeJson(req, res)
    })().catch(err => {
      if (!res.headersSent) error(res, asApiError(err))
      else res.destroy()
    })
  })
  server.on('clientError', clientError)
  const routeJson = (req: IncomingMessage, res: ServerResponse): void => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname
    const route = init.routes[`${req.method ?? 'GET'} ${path}`]
    if (route === undefined) {
      const allowed = Object.keys(init.routes).filter(k => k.endsWith(` ${path}`)).map(k => k.split(' ')[0])
      if (allowed.length > 0) error(res, new ApiError(405, `${req.method ?? ''} is not allowed on ${path}`, { code: 'method_not_allowed' }), { allow: allowed.join(', ') })
      else error(res, new ApiError(404, `no route for ${req.method ?? ''} ${path}`, { code: 'not_found' }))
      return
    }
    try {
      send(res, 200, route(req))
    } catch (err) {
      error(res, asApiError(err))
    }
  }
  if (init.path !== undefined) server.listen(init.path)
  else server.listen(init.port, init.host)
  await once(server, 'listening')
  let url: string
  if (init.path !== undefined) {
    url = `unix:${init.path}`
  } else {
    const { port } = server.address() as AddressInfo
    const host = init.host.includes(':') ? `[${init.host}]` : init.host
    url = `http://${host}:${port}`
  }
  return {
    url,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>(resolve => { server.close(() => { resolve() }) })
    }
  }
}
