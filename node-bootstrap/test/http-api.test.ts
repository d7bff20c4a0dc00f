/**
 * The HTTP API as `start` serves it (startHttpServer with the peer page, /api/mesh, /metrics and
 * the OpenAI handler over an in-process stories260K pipeline of real libp2p peers): API keys as
 * the unmodified `openai` client sends them, one error envelope for every error, SSE that waits
 * for a slow reader, and a client that leaves cancelling its generation on the stages.
 */
import { once } from 'node:events'
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import type { ServerResponse } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { createTokenizer } from '@shardmesh/model'
import { loadModel } from '@shardmesh/model/node'
import { createOpenAiHandler } from '@shardmesh/pipeline'
import type { PipelineGenerateResult, ServedModel } from '@shardmesh/pipeline'
import { storiesDir } from '../../test/fixtures.ts'
import { PATIENT_PINGS, localPipeline, startNode } from '../../test/pipeline/local.ts'
import type { LocalPipeline } from '../../test/pipeline/local.ts'
import { apiKeysOf } from '../src/http/auth.ts'
import { meshRoutes } from '../src/http/mesh.ts'
import { createMetrics } from '../src/http/metrics.ts'
import { peerPageHandler } from '../src/http/peer-page.ts'
import { startHttpServer } from '../src/http/server.ts'
import type { HttpServer } from '../src/http/server.ts'

const dir = storiesDir()
const golden = JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf8')) as { cases: Array<{ tag: string, prompt: string, prompt_tokens: number[], generated_tokens: number[] }> }
const main = golden.cases[0]
/** The case with no prompt (BOS only) and 256 generated tokens, no stop on the way. */
const long = golden.cases.find(c => c.prompt === '' && c.generated_tokens.length >= 250)!
const KEYS = ['sk-shardmesh-test-key-one', 'sk-shardmesh-test-key-two']

/** A generation the API asked for: tokens produced so far, and how it ended. */
interface Gen { tokens: number, result?: PipelineGenerateResult, error?: Error }

describe('HTTP API: keys, error envelope, SSE backpressure', () => {
  let pipe: LocalPipeline
  let api: HttpServer
  let sock: HttpServer
  let tmp: string
  let tokenizer: ReturnType<typeof createTokenizer>
  const gens: Gen[] = []
  const responses: ServerResponse[] = []

  beforeAll(async () => {
    const model = await loadModel(join(dir, 'stories260K.gguf'))
    tokenizer = createTokenizer(model.tokenizer!)
    pipe = await localPipeline(model, [[0, 2], [2, 5]], { node: PATIENT_PINGS })
    // a model whose only stage is a peer that has stopped: its requests fail with 503
    const gone = await startNode()
    const goneRoute = [{ peerId: gone.peerId.toString(), addrs: gone.getMultiaddrs().map(String), layers: [0, 5] as [number, number] }]
    await gone.stop()
    const served: ServedModel[] = [
      {
        id: 'stories260K', config: model.config, tokenizer,
        generate: async ({ faultTolerance: _, ...r }) => {
          const g: Gen = { tokens: 0 }
          gens.push(g)
          try {
            g.result = await pipe.driver.generate({ ...r, route: pipe.route, onToken: async t => { g.tokens++; return await r.onToken?.(t) } })
            return g.result
          } catch (err) {
            g.error = err as Error
            throw err
          }
        }
      },
      { id: 'unreachable', config: model.config, tokenizer, generate: async ({ faultTolerance: _, ...r }) => await pipe.driver.generate({ ...r, route: goneRoute }) }
    ]
    const openai = createOpenAiHandler({ models: () => served })
    tmp = mkdtempSync(join(tmpdir(), 'shardmesh-http-'))
    const dist = join(tmp, 'dist')
    mkdirSync(join(dist, 'assets'), { recursive: true })
    writeFileSync(join(dist, 'index.html'), '<!doctype html><title>peer</title>')
    writeFileSync(join(dist, 'assets', 'app.js'), 'console.log("peer")')
    const mesh = pipe.head.services.mesh
    const metrics = createMetrics({ mesh, processMetrics: false, stageRejections: () => pipe.endpoints[0].rejections() })
    api = await startHttpServer({
      port: 0, host: '127.0.0.1', apiKeys: KEYS, routes: meshRoutes(mesh),
      handlers: [peerPageHandler({ dist, addrs: () => pipe.head.getMultiaddrs().map(String) }), metrics.handler, openai]
    })
    // the same API on a Unix socket (small kernel buffers, so a paused reader fills them within one generation), no keys
    sock = await startHttpServer({ port: 0, host: '', path: join(tmp, 'api.sock'), highWaterMark: 1024, routes: {}, handlers: [async (req, res) => { responses.push(res); return await openai(req, res) }] })
  })
  afterAll(async () => {
    await api?.close()
    await sock?.close()
    await pipe?.stop()
    if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true })
  })

  const want = (c: typeof main, n: number): string => tokenizer.decode(c.generated_tokens.slice(0, n), { prev: c.prompt_tokens.at(-1) })
  const client = (apiKey: string): OpenAI => new OpenAI({ baseURL: `${api.url}/v1`, apiKey, maxRetries: 0 })

  it('the openai client: a wrong key gets 401 invalid_api_key; either right key completes with the golden tokens, streaming and not', async () => {
    await expect(client('sk-wrong-key-0000000000').models.list()).rejects.toMatchObject({ status: 401, code: 'invalid_api_key', type: 'invalid_request_error' })
    await expect(client('sk-wrong-key-0000000000').completions.create({ model: 'stories260K', prompt: main.prompt, max_tokens: 5 })).rejects.toMatchObject({ status: 401, code: 'invalid_api_key' })
    // a key that starts like a right one is still wrong
    await expect(client(KEYS[0].slice(0, -1)).models.list()).rejects.toMatchObject({ status: 401, code: 'invalid_api_key' })
    expect((await client(KEYS[0]).models.list()).data.map(m => m.id)).toEqual(['stories260K', 'unreachable'])
    const r = await client(KEYS[0]).completions.create({ model: 'stories260K', prompt: main.prompt, max_tokens: 30, temperature: 0 })
    expect(r.choices[0].text).toBe(want(main, 30))
    const stream = await client(KEYS[1]).chat.completions.create({ model: 'stories260K', messages: [{ role: 'user', content: main.prompt }], max_tokens: 30, temperature: 0, stream: true })
    let text = ''
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? ''
    expect(text).toBe(want(main, 30))
  })

  it('the key guards the OpenAI API, /api/*, /metrics and unknown paths; the peer page, its assets and peer.json stay open', async () => {
    for (const path of ['/v1/models', '/api/mesh', '/metrics', '/nope']) {
      const res = await fetch(`${api.url}${path}`)
      expect(res.status, path).toBe(401)
      expect(res.headers.get('www-authenticate')).toBe('Bearer')
      expect(await res.json()).toEqual({ error: { message: expect.stringContaining('API key'), type: 'invalid_request_error', param: null, code: 'missing_api_key' } })
    }
    const wrong = await fetch(`${api.url}/api/mesh`, { headers: { authorization: 'Bearer sk-wrong-key-0000000000' } })
    const body = await wrong.json() as { error: { message: string } }
    expect(body).toMatchObject({ error: { code: 'invalid_api_key' } })
    expect(body.error.message).not.toContain('sk-wrong-key-0000000000') // shown redacted, never whole
    for (const path of ['/', '/peer.json', '/assets/app.js']) expect((await fetch(`${api.url}${path}`)).status, path).toBe(200)
    const auth = { authorization: `Bearer ${KEYS[1]}` }
    const mesh = await fetch(`${api.url}/api/mesh`, { headers: auth })
    expect(mesh.status).toBe(200)
    expect(await mesh.json()).toHaveProperty('peers')
    const metrics = await fetch(`${api.url}/metrics`, { headers: auth })
    expect(metrics.status).toBe(200)
    expect(await metrics.text()).toContain('shardmesh_stage_rejected_messages')
  })

  it('every error of every route has one envelope: { error: { message, type, param, code } }', async () => {
    const auth = { authorization: `Bearer ${KEYS[0]}` }
    const json = { ...auth, 'content-type': 'application/json' }
    const cases: Array<[string, number, string, Promise<Response>]> = [
      ['404 path', 404, 'not_found', fetch(`${api.url}/nope`, { headers: auth })],
      ['405 route', 405, 'method_not_allowed', fetch(`${api.url}/api/mesh`, { method: 'POST', headers: auth })],
      ['405 metrics', 405, 'method_not_allowed', fetch(`${api.url}/metrics`, { method: 'DELETE', headers: auth })],
      ['405 openai', 405, 'method_not_allowed', fetch(`${api.url}/v1/completions`, { headers: auth })],
      ['400 json', 400, 'invalid_json', fetch(`${api.url}/v1/completions`, { method: 'POST', headers: json, body: '{"model": ' })],
      ['400 value', 400, 'invalid_value', fetch(`${api.url}/v1/completions`, { method: 'POST', headers: json, body: JSON.stringify({ model: 'stories260K', prompt: 'x', temperature: 9 }) })],
      ['413', 413, 'request_too_large', fetch(`${api.url}/v1/completions`, { method: 'POST', headers: json, body: JSON.stringify({ model: 'stories260K', prompt: 'x'.repeat(2 << 20) }) })],
      ['401', 401, 'missing_api_key', fetch(`${api.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })],
      ['404 model', 404, 'model_not_found', fetch(`${api.url}/v1/completions`, { method: 'POST', headers: json, body: JSON.stringify({ model: 'nope', prompt: 'x' }) })],
      ['503', 503, 'NO_RECOVERY', fetch(`${api.url}/v1/completions`, { method: 'POST', headers: json, body: JSON.stringify({ model: 'unreachable', prompt: 'x', max_tokens: 2 }) })]
    ]
    for (const [what, status, code, pending] of cases) {
      const res = await pending
      expect(res.status, what).toBe(status)
      expect(res.headers.get('content-type'), what).toMatch(/^application\/json/)
      const body = await res.json() as { error: Record<string, unknown> }
      expect(Object.keys(body), what).toEqual(['error'])
      expect(Object.keys(body.error).sort(), what).toEqual(['code', 'message', 'param', 'type'])
      expect(body.error, what).toMatchObject({ code, message: expect.any(String), type: status >= 500 ? 'server_error' : 'invalid_request_error' })
    }
    // a request node:http cannot parse gets the envelope too
    const socket = connect(Number(new URL(api.url).port), '127.0.0.1')
    socket.end('NOT HTTP AT ALL\r\n\r\n')
    let raw = ''
    for await (const d of socket) raw += String(d)
    expect(raw).toMatch(/^HTTP\/1\.1 400 /)
    expect(JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4))).toMatchObject({ error: { code: 'bad_request', type: 'invalid_request_error', param: null } })
  })

  it('SSE waits for a client that stops reading (no token is computed while its response needs draining), and completes with the golden tokens when it reads again', async () => {
    const n = 250
    const requests = 4 // pipelined on one connection: more events than the socket's kernel buffers hold (~100 KB), which one generation cannot fill
    const body = JSON.stringify({ model: 'stories260K', prompt: long.prompt, max_tokens: n, temperature: 0, stream: true })
    const socket = connect(join(tmp, 'api.sock'))
    onTestFinished(() => { socket.destroy() })
    await once(socket, 'connect')
    const [g0, r0] = [gens.length, responses.length]
    // the client sends its requests and reads nothing (no 'data' listener: the socket stays paused)
    socket.write(`POST /v1/completions HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`.repeat(requests))
    const mine = (): { gs: Gen[], rs: ServerResponse[] } => ({ gs: gens.slice(g0), rs: responses.slice(r0) })
    const tokens = (): number => mine().gs.reduce((a, g) => a + g.tokens, 0)
    // until every response still open waits for the client: the one on the socket once the kernel's buffers are full too
    const blocked = (): boolean => { const { rs } = mine(); return rs.length === requests && rs.every(r => r.writableEnded || r.writableNeedDrain) && !rs.every(r => r.writableEnded) }
    await expect.poll(blocked, { timeout: 120_000, interval: 20 }).toBe(true)
    const paused = tokens()
    // every generation stays where it is while the client does not read
    await new Promise(resolve => setTimeout(resolve, 500))
    expect(tokens()).toBe(paused)
    expect(blocked()).toBe(true)
    expect(paused).toBeLessThan(requests * n)
    // what waits in this process is at most the high-water mark and the event that passed it, per response
    const queued = mine().rs.map(r => r.writableLength)
    for (const q of queued) expect(q).toBeLessThan(1024 + 512)
    let raw = ''
    socket.on('data', (d: Buffer) => { raw += d.toString() })
    await expect.poll(() => raw.split('data: [DONE]').length - 1, { timeout: 120_000 }).toBe(requests)
    socket.destroy()
    for (const part of raw.split('data: [DONE]').slice(0, requests)) {
      const events = [...part.matchAll(/^data: (\{.*\})$/gm)].map(m => JSON.parse(m[1]) as { choices: Array<{ text: string, finish_reason: string | null }> })
      expect(events.map(e => e.choices[0].text).join('')).toBe(want(long, n))
      expect(events.at(-1)!.choices[0].finish_reason).toBe('length')
    }
    for (const g of mine().gs) expect(g.result?.tokens).toEqual(long.generated_tokens.slice(0, n))
    console.log(JSON.stringify({ sse: 'paused reader', requests, tokensEach: n, tokensWhenPaused: paused, queuedBytes: queued, highWaterMark: 1024 }))
  }, 300_000)

  it('a client that disconnects mid-stream cancels its generation: its sessions are closed on every stage', async () => {
    await expect.poll(() => pipe.servers.map(s => s.stats().sessions)).toEqual([0, 0])
    const ctl = new AbortController()
    const before = gens.length
    const res = await fetch(`${api.url}/v1/completions`, {
      method: 'POST', signal: ctl.signal, headers: { authorization: `Bearer ${KEYS[0]}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'stories260K', prompt: long.prompt, max_tokens: 250, temperature: 0, stream: true })
    })
    const reader = res.body!.getReader()
    let seen = ''
    while ((seen.match(/^data: /gm) ?? []).length < 5) seen += new TextDecoder().decode((await reader.read()).value)
    await expect.poll(() => pipe.servers.map(s => s.stats().sessions)).toEqual([1, 1])
    ctl.abort()
    const g = gens[before]
    await expect.poll(() => g.error?.message, { timeout: 30_000 }).toBe('the client went away')
    expect(g.tokens).toBeLessThan(250)
    // closed by the head, not left to expire
    await expect.poll(() => pipe.servers.map(s => s.stats().sessions), { timeout: 5000 }).toEqual([0, 0])
    expect(pipe.servers.map(s => s.stats().expired)).toEqual([0, 0])
  })
})

describe('apiKeysOf (--api-key and SHARDMESH_API_KEYS)', () => {
  it('joins the flag and the environment, comma-separated, without blanks or repeats; no keys: an open API', () => {
    expect(apiKeysOf({ 'api-key': 'a1, b2,,a1' }, { SHARDMESH_API_KEYS: 'c3,b2' })).toEqual(['a1', 'b2', 'c3'])
    expect(apiKeysOf({}, {})).toEqual([])
    expect(() => apiKeysOf({ 'api-key': ' ' }, {})).toThrow(expect.objectContaining({ name: 'CliError' }))
    expect(() => apiKeysOf({ 'api-key': 'a b' }, {})).toThrow(/whitespace/)
  })
})
