// The peer page route of `shardmesh start` (src/http/peer-page.ts) over a real HTTP server:
// the built page at `/`, its assets, `peer.json` with the bootstrap's WebSocket addresses,
// and nothing outside the build folder.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { peerPageHandler, peerPageUrl } from '../src/http/peer-page.ts'
import { startHttpServer } from '../src/http/server.ts'
import type { HttpServer } from '../src/http/server.ts'

const ID = '12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp'
const ADDRS = [`/ip4/10.0.0.5/tcp/4001/ws/p2p/${ID}`, `/ip4/10.0.0.5/tcp/4002/p2p/${ID}`]
let root: string
let dist: string
let http: HttpServer

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'shardmesh-page-test-'))
  dist = join(root, 'dist')
  await mkdir(join(dist, 'assets'), { recursive: true })
  await writeFile(join(dist, 'index.html'), '<!doctype html><title>peer</title>')
  await writeFile(join(dist, 'assets', 'index-abc.js'), 'console.log(1)')
  await writeFile(join(root, 'secret.txt'), 'not served')
  http = await startHttpServer({ port: 0, host: '127.0.0.1', routes: { 'GET /api/mesh': () => ({ ok: true }) }, handlers: [peerPageHandler({ dist, addrs: () => ADDRS, meshId: 'm1' })] })
})

afterAll(async () => {
  await http?.close()
  await rm(root, { recursive: true, force: true })
})

describe('the peer page route', () => {
  it('serves the page at / and its assets with their content types', async () => {
    const page = await fetch(peerPageUrl(http.url))
    expect(page.status).toBe(200)
    expect(page.headers.get('content-type')).toMatch(/^text\/html/)
    expect(await page.text()).toContain('<title>peer</title>')
    const js = await fetch(`${http.url}/assets/index-abc.js`)
    expect(js.headers.get('content-type')).toMatch(/^text\/javascript/)
    expect(await js.text()).toBe('console.log(1)')
  })

  it('peer.json gives the WebSocket addresses only, the mesh id, and local dialing for private addresses', async () => {
    const json = await (await fetch(`${http.url}/peer.json`)).json()
    expect(json).toEqual({ bootstrap: [ADDRS[0]], allowLocalDial: true, meshId: 'm1' })
  })

  it('leaves other paths to the other routes and serves nothing outside the build', async () => {
    expect(await (await fetch(`${http.url}/api/mesh`)).json()).toEqual({ ok: true })
    for (const path of ['/assets/../../secret.txt', '/assets/%2e%2e/%2e%2e/secret.txt', '/secret.txt', '/assets/missing.js']) {
      const res = await fetch(`${http.url}${path}`)
      expect(res.status, path).toBe(404)
      expect(await res.text()).not.toContain('not served')
    }
  })
})
