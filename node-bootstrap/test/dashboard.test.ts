// The dashboard's routes (src/http/dashboard.ts, events.ts) over a real HTTP server and real
// mesh peers: the built page under /dashboard/, open without a key while its data needs one,
// and /api/events streaming snapshots of the mesh — on change, and without buffering past the
// response's high-water mark for a client that stops reading.
import { request } from 'node:http'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createMeshPeer } from '@shardmesh/mesh'
import type { MeshNode } from '@shardmesh/mesh'
import { dashboard, dashboardPageHandler, dashboardUrl } from '../src/http/dashboard.ts'
import { eventsHandler } from '../src/http/events.ts'
import { RESPONSE_HIGH_WATER_MARK, startHttpServer } from '../src/http/server.ts'
import type { HttpServer } from '../src/http/server.ts'
import { waitFor } from './helpers.ts'

let root: string
let dist: string
const servers: HttpServer[] = []
const nodes: MeshNode[] = []

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'shardmesh-dashboard-test-'))
  dist = join(root, 'dist')
  await mkdir(join(dist, 'assets'), { recursive: true })
  await writeFile(join(dist, 'index.html'), '<!doctype html><title>dashboard</title>')
  await writeFile(join(dist, 'assets', 'index-abc.js'), 'console.log(1)')
  await writeFile(join(root, 'secret.txt'), 'not served')
})

afterEach(async () => {
  for (const s of servers.splice(0)) await s.close()
  for (const n of nodes.splice(0)) await n.stop()
})

afterAll(async () => { await rm(root, { recursive: true, force: true }) })

/** Read `/api/events` until `until` accepts a snapshot. */
async function snapshotWhere (url: string, until: (s: any) => boolean, headers: Record<string, string> = {}): Promise<any> {
  const controller = new AbortController()
  const res = await fetch(`${url}/api/events`, { headers, signal: controller.signal })
  expect(res.status).toBe(200)
  expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/)
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader()
  let buffer = ''
  try {
    for (;;) {
      const { value, done } = await reader.read()
      if (done) throw new Error('the stream ended')
      buffer += value
      let end: number
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end)
        buffer = buffer.slice(end + 2)
        const data = block.split('\n').find(l => l.startsWith('data: '))
        if (block.startsWith('event: snapshot') && data !== undefined) {
          const s = JSON.parse(data.slice(6))
          if (until(s)) return s
        }
      }
    }
  } finally {
    controller.abort()
  }
}

describe('the dashboard page', () => {
  it('redirects /dashboard to /dashboard/, serves the page and its assets, nothing outside the build', async () => {
    const http = await startHttpServer({ port: 0, host: '127.0.0.1', routes: {}, handlers: [dashboardPageHandler(dist)] })
    servers.push(http)
    const moved = await fetch(`${http.url}/dashboard?x=1`, { redirect: 'manual' })
    expect(moved.status).toBe(302)
    expect(moved.headers.get('location')).toBe('/dashboard/?x=1')
    const page = await fetch(dashboardUrl(http.url))
    expect(page.headers.get('content-type')).toMatch(/^text\/html/)
    expect(await page.text()).toContain('<title>dashboard</title>')
    const js = await fetch(`${http.url}/dashboard/assets/index-abc.js`)
    expect(js.headers.get('content-type')).toMatch(/^text\/javascript/)
    for (const path of ['/dashboard/assets/../../secret.txt', '/dashboard/%2e%2e/secret.txt', '/dashboard/secret.txt', '/dashboard/assets/missing.js']) {
      const res = await fetch(`${http.url}${path}`)
      expect(res.status, path).toBe(404)
      expect(await res.text()).not.toContain('not served')
    }
  })

  it('with API keys the page is open and its feed needs the key', async () => {
    const node = await createMeshPeer({ listen: ['/ip4/127.0.0.1/tcp/0'] })
    nodes.push(node)
    const dash = dashboard({ dist, node })
    const http = await startHttpServer({ port: 0, host: '127.0.0.1', apiKeys: ['k-123'], routes: {}, handlers: [dash.handler] })
    servers.push(http)
    expect((await fetch(dashboardUrl(http.url))).status).toBe(200)
    expect((await fetch(`${http.url}/dashboard/assets/index-abc.js`)).status).toBe(200)
    const denied = await fetch(`${http.url}/api/events`)
    expect(denied.status).toBe(401)
    expect(await denied.json()).toMatchObject({ error: { code: 'missing_api_key' } })
    const s = await snapshotWhere(http.url, () => true, { authorization: 'Bearer k-123' })
    expect(s.self).toBe(node.peerId.toString())
    dash.stop()
  })
})

describe('GET /api/events', () => {
  it('streams snapshots of the mesh: this node, then a peer that joins, with its link', async () => {
    const a = await createMeshPeer({ listen: ['/ip4/127.0.0.1/tcp/0'] })
    nodes.push(a)
    const dash = dashboard({ dist, node: a })
    const http = await startHttpServer({ port: 0, host: '127.0.0.1', routes: {}, handlers: [dash.handler] })
    servers.push(http)
    const first = await snapshotWhere(http.url, () => true)
    expect(first.self).toBe(a.peerId.toString())
    expect(first.mesh.peers.map((p: { peerId: string }) => p.peerId)).toEqual([a.peerId.toString()])
    expect(first.mesh.plan).toBeNull()
    expect(first).not.toHaveProperty('live') // no pipeline here
    const b = await createMeshPeer({ bootstrap: [a.getMultiaddrs()[0].toString()], listen: [] })
    nodes.push(b)
    const joined = await snapshotWhere(http.url, s => s.mesh.peers.some((p: { peerId: string }) => p.peerId === b.peerId.toString()))
    const row = joined.mesh.peers.find((p: { peerId: string }) => p.peerId === b.peerId.toString())
    expect(row.status).toBe('alive')
    expect(row.links.map((l: { kind: string }) => l.kind)).toEqual(['tcp'])
    expect((await fetch(`${http.url}/api/events`, { method: 'POST' })).status).toBe(405)
    dash.stop()
  }, 30_000)

  it('a client that stops reading gets no more than the high-water mark buffered; it gets the newest snapshot once it reads again', async () => {
    const node = await createMeshPeer({ listen: ['/ip4/127.0.0.1/tcp/0'] })
    nodes.push(node)
    const events = eventsHandler({ self: node.peerId.toString(), mesh: node.services.mesh, intervalMs: 1 })
    let response: ServerResponse | undefined
    const http = await startHttpServer({ port: 0, host: '127.0.0.1', routes: {}, handlers: [async (req: IncomingMessage, res: ServerResponse) => { response = res; return await events.handler(req, res) }] })
    servers.push(http)
    const { port } = new URL(http.url)
    const res = await new Promise<IncomingMessage>(resolve => { request({ host: '127.0.0.1', port, path: '/api/events' }, resolve).end() })
    res.pause() // the client reads nothing from here on: the socket buffers fill, then the response's
    await waitFor('the server to see backpressure', async () => response?.writableNeedDrain === true ? true : undefined, 40_000)
    let most = 0
    for (let i = 0; i < 40; i++) {
      most = Math.max(most, response!.writableLength)
      await new Promise(resolve => setTimeout(resolve, 25))
    }
    const snapshotBytes = JSON.stringify(node.services.mesh.view()).length + 1024
    expect(most).toBeLessThanOrEqual(RESPONSE_HIGH_WATER_MARK + snapshotBytes)
    // reading again, snapshots keep coming
    let got = ''
    res.on('data', (d: Buffer) => { got += d.toString() })
    res.resume()
    await waitFor('snapshots after the client read again', async () => got.includes('event: snapshot') ? true : undefined, 10_000)
    res.destroy()
    await waitFor('the subscriber gone', async () => events.subscribers() === 0 ? true : undefined, 5000)
    events.stop()
  }, 60_000)
})
