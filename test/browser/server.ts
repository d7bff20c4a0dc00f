import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'

/** What a path serves: a body with its content type, or a function that makes one. */
export type Route = { type: string, body: string | Uint8Array } | (() => Promise<{ type: string, body: string | Uint8Array }>)

export interface StaticServer {
  /** `http://127.0.0.1:PORT` */
  url: string
  close: () => Promise<void>
}

/** A Node http server on 127.0.0.1 (a secure context for WebGPU) serving fixed routes; 404 otherwise. */
export async function serveRoutes (routes: Record<string, Route>): Promise<StaticServer> {
  const server = createServer((req, res) => {
    const route = routes[new URL(req.url ?? '/', 'http://x').pathname]
    if (route === undefined) {
      res.statusCode = 404
      res.end('not found')
      return
    }
    const answer = typeof route === 'function' ? route() : Promise.resolve(route)
    answer.then(({ type, body }) => {
      res.setHeader('content-type', type)
      res.end(body)
    }, (err: Error) => {
      res.statusCode = 500
      res.end(err.message)
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => { server.closeAllConnections(); server.close(); await once(server, 'close') }
  }
}
