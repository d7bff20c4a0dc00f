import { createServer } from 'node:http'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, dirname, join } from 'node:path'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import { fetchModel, progressBar } from '../src/fetch.ts'
import type { FetchProgress } from '../src/fetch.ts'
import type { AddressInfo } from 'node:net'
import type { Server } from 'node:http'

const body = Uint8Array.from({ length: 200_000 }, (_, i) => (i * 31 + 7) & 0xff)
const requests = new Map<string, number>()
let server: Server
let base: string
let cacheDir: string

beforeAll(async () => {
  server = createServer((req, res) => {
    const path = req.url ?? '/'
    requests.set(path, (requests.get(path) ?? 0) + 1)
    if (path.startsWith('/models/')) {
      res.writeHead(200, { 'content-length': body.byteLength })
      for (let i = 0; i < body.byteLength; i += 65536) res.write(body.subarray(i, i + 65536))
      res.end()
    } else if (path === '/chunked.bin') {
      res.writeHead(200) // no content-length: chunked transfer
      res.end(body.subarray(0, 1000))
    } else if (path === '/short.bin') {
      res.writeHead(200, { 'content-length': 1000 })
      res.write(body.subarray(0, 400), () => res.destroy())
    } else if (path === '/stall.bin') {
      res.writeHead(200, { 'content-length': body.byteLength })
      res.write(body.subarray(0, 1000)) // and never finishes
    } else {
      res.writeHead(404, 'Not Found').end('no such model')
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})

afterAll(async () => {
  server.closeAllConnections()
  await new Promise((resolve) => server.close(resolve))
})

beforeEach(async () => {
  cacheDir = await mkdtemp(join(tmpdir(), 'shardmesh-fetch-'))
})

afterEach(async () => {
  vi.unstubAllEnvs()
  await rm(cacheDir, { recursive: true, force: true })
})

describe('fetchModel', () => {
  it('downloads once, reports progress, then serves the cached file without a request', async () => {
    const url = `${base}/models/tiny.gguf`
    const events: FetchProgress[] = []
    const path = await fetchModel(url, { cacheDir, onProgress: (e) => events.push(e) })
    expect(dirname(path)).toBe(cacheDir)
    expect(basename(path)).toMatch(/^[0-9a-f]{16}-tiny\.gguf$/)
    expect(new Uint8Array(await readFile(path))).toEqual(body)
    expect(events.length).toBeGreaterThan(0)
    expect(events.every((e) => e.url === url && e.totalBytes === body.byteLength)).toBe(true)
    expect(events.map((e) => e.receivedBytes)).toEqual([...events.map((e) => e.receivedBytes)].sort((a, b) => a - b))
    expect(events.at(-1)!.receivedBytes).toBe(body.byteLength)

    expect(await fetchModel(url, { cacheDir })).toBe(path)
    expect(requests.get('/models/tiny.gguf')).toBe(1)
    expect(await readdir(cacheDir)).toEqual([basename(path)])
  })

  it('keeps different URLs with the same file name apart', async () => {
    const a = await fetchModel(`${base}/models/a/model.bin`, { cacheDir })
    const b = await fetchModel(`${base}/models/b/model.bin`, { cacheDir })
    expect(a).not.toBe(b)
    expect(basename(a).endsWith('-model.bin')).toBe(true)
  })

  it('accepts bodies without Content-Length', async () => {
    const events: FetchProgress[] = []
    const path = await fetchModel(`${base}/chunked.bin`, { cacheDir, onProgress: (e) => events.push(e) })
    expect((await readFile(path)).byteLength).toBe(1000)
    expect(events.at(-1)).toEqual({ url: `${base}/chunked.bin`, receivedBytes: 1000, totalBytes: undefined })
  })

  it('defaults the cache to $SHARDMESH_CACHE', async () => {
    vi.stubEnv('SHARDMESH_CACHE', join(cacheDir, 'env'))
    const path = await fetchModel(`${base}/models/env.bin`)
    expect(dirname(path)).toBe(join(cacheDir, 'env'))
  })

  it('fails on HTTP errors with the URL and status, caching nothing', async () => {
    const url = `${base}/missing.bin`
    const err = await fetchModel(url, { cacheDir }).catch((e: Error) => e)
    expect(err).toMatchObject({ name: 'DownloadError' })
    expect((err as Error).message).toContain(url)
    expect((err as Error).message).toContain('HTTP 404')
    expect(await readdir(cacheDir)).toEqual([])
  })

  it('fails on a body shorter than Content-Length, leaving no partial file', async () => {
    const err = await fetchModel(`${base}/short.bin`, { cacheDir }).catch((e: Error) => e)
    expect(err).toMatchObject({ name: 'DownloadError' })
    expect((err as Error).message).toContain('HTTP 200')
    expect(await readdir(cacheDir)).toEqual([])
  })

  it('fails on abort mid-body, leaving no partial file', async () => {
    const controller = new AbortController()
    const err = await fetchModel(`${base}/stall.bin`, {
      cacheDir,
      signal: controller.signal,
      onProgress: () => controller.abort()
    }).catch((e: Error) => e)
    expect(err).toMatchObject({ name: 'DownloadError' })
    expect((err as Error).message).toContain('aborted')
    expect(await readdir(cacheDir)).toEqual([])
  })

  it('rejects URLs that are not http(s)', async () => {
    await expect(fetchModel('file:///etc/passwd', { cacheDir })).rejects.toMatchObject({ name: 'DownloadError' })
    await expect(fetchModel('not a url', { cacheDir })).rejects.toMatchObject({ name: 'DownloadError' })
  })
})

describe('progressBar', () => {
  const fakeStream = (isTTY: boolean): { isTTY: boolean, columns: number, write: (s: string) => boolean, out: string[] } => {
    const out: string[] = []
    return { isTTY, columns: 80, out, write: (s: string) => out.push(s) > 0 }
  }

  it('draws one overwriting line with percent, MB and MB/s, ending it when complete', () => {
    const stream = fakeStream(true)
    const onProgress = progressBar(stream)
    onProgress({ url: 'u', receivedBytes: 2_500_000, totalBytes: 10_000_000 })
    onProgress({ url: 'u', receivedBytes: 3_000_000, totalBytes: 10_000_000 }) // within the redraw interval: skipped
    onProgress({ url: 'u', receivedBytes: 10_000_000, totalBytes: 10_000_000 })
    expect(stream.out).toHaveLength(2)
    // eslint-disable-next-line no-control-regex -- the bar redraws its line with ESC[2K
    expect(stream.out[0]).toMatch(/^\r\x1b\[2K\[#{10}-{30}\] {2}25% 2\.5\/10\.0 MB [\d.]+ MB\/s$/)
    expect(stream.out[1]).toMatch(/\[#{40}\] 100% 10\.0\/10\.0 MB [\d.]+ MB\/s\n$/)
  })

  it('shows bytes and speed when the size is unknown', () => {
    const stream = fakeStream(true)
    progressBar(stream)({ url: 'u', receivedBytes: 1_500_000 })
    expect(stream.out[0]).toMatch(/1\.5 MB [\d.]+ MB\/s$/)
  })

  it('prints nothing when not a TTY', () => {
    const stream = fakeStream(false)
    progressBar(stream)({ url: 'u', receivedBytes: 10, totalBytes: 10 })
    expect(stream.out).toEqual([])
  })
})
