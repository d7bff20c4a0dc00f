import { createServer } from 'node:http'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTokenizer } from '@shardmesh/model'
import { loadModel } from '@shardmesh/model/node'
import { createOpenAiHandler } from '@shardmesh/pipeline'
import { storiesDir } from '../fixtures.ts'
import { localPipeline } from './local.ts'
import type { LocalPipeline } from './local.ts'

const dir = storiesDir()
const golden = JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf8')) as { cases: Array<{ tag: string, prompt: string, generated_tokens: number[] }> }
const c = golden.cases[0]

describe('OpenAI-compatible API over a mesh of in-process peers (unmodified openai client)', () => {
  let pipe: LocalPipeline
  let server: Server
  let base: string
  let client: OpenAI
  let tokenizer: ReturnType<typeof createTokenizer>

  beforeAll(async () => {
    const model = await loadModel(join(dir, 'stories260K.gguf'))
    tokenizer = createTokenizer(model.tokenizer!)
    pipe = await localPipeline(model, [[0, 2], [2, 4], [4, 5]])
    const handler = createOpenAiHandler({
      models: () => [{ id: 'stories260K', config: model.config, tokenizer, generate: async ({ faultTolerance: _, ...r }) => await pipe.driver.generate({ ...r, route: pipe.route }) }]
    })
    server = createServer((req, res) => {
      void handler(req, res).then(handled => { if (!handled) { res.writeHead(404); res.end() } })
    })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    client = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'unused', maxRetries: 0 })
  })
  afterAll(async () => {
    await new Promise(resolve => server?.close(resolve))
    await pipe?.stop()
  })

  const want = (n: number): string => tokenizer.decode(c.generated_tokens.slice(0, n), { prev: tokenizer.encode(c.prompt).at(-1) })

  it('lists the model', async () => {
    const models = await client.models.list()
    expect(models.data.map(m => m.id)).toEqual(['stories260K'])
  })

  it('completes (non-streaming) with the golden continuation and usage', async () => {
    const r = await client.completions.create({ model: 'stories260K', prompt: c.prompt, max_tokens: 30, temperature: 0 })
    expect(r.choices[0].text).toBe(want(30))
    expect(r.choices[0].finish_reason).toBe('length')
    expect(r.usage).toEqual({ prompt_tokens: tokenizer.encode(c.prompt).length, completion_tokens: 30, total_tokens: tokenizer.encode(c.prompt).length + 30 })
  })

  it('streams completions as server-sent events', async () => {
    const stream = await client.completions.create({ model: 'stories260K', prompt: c.prompt, max_tokens: 30, temperature: 0, stream: true })
    let text = ''
    let finish: string | null = null
    for await (const chunk of stream) { text += chunk.choices[0]?.text ?? ''; finish = chunk.choices[0]?.finish_reason ?? finish }
    expect(text).toBe(want(30))
    expect(finish).toBe('length')
  })

  it('chat completions, plain template for a base model, streaming and not', async () => {
    const messages = [{ role: 'user' as const, content: c.prompt }]
    const r = await client.chat.completions.create({ model: 'stories260K', messages, max_tokens: 25, temperature: 0 })
    expect(r.choices[0].message.content).toBe(want(25))
    expect(r.usage?.completion_tokens).toBe(25)
    const stream = await client.chat.completions.create({ model: 'stories260K', messages, max_tokens: 25, temperature: 0, stream: true, stream_options: { include_usage: true } })
    let text = ''
    let usage: unknown
    for await (const chunk of stream) { text += chunk.choices[0]?.delta?.content ?? ''; usage = chunk.usage ?? usage }
    expect(text).toBe(want(25))
    expect(usage).toMatchObject({ completion_tokens: 25 })
  })

  it('stops at a text stop sequence without returning it', async () => {
    const full = want(40)
    const stop = full.slice(20, 24)
    const r = await client.completions.create({ model: 'stories260K', prompt: c.prompt, max_tokens: 40, temperature: 0, stop })
    expect(r.choices[0].text).toBe(full.slice(0, full.indexOf(stop)))
    expect(r.choices[0].finish_reason).toBe('stop')
  })

  it('answers bad input with OpenAI-style errors and statuses', async () => {
    await expect(client.completions.create({ model: 'nope', prompt: 'x' })).rejects.toMatchObject({ status: 404, code: 'model_not_found' })
    await expect(client.completions.create({ model: 'stories260K', prompt: 'x', max_tokens: 100000 })).rejects.toMatchObject({ status: 400, code: 'context_length_exceeded', param: 'max_tokens' })
    await expect(client.completions.create({ model: 'stories260K', prompt: 'a b '.repeat(3000) })).rejects.toMatchObject({ status: 400, code: 'context_length_exceeded', param: 'prompt' })
    await expect(client.chat.completions.create({ model: 'stories260K', messages: [] })).rejects.toMatchObject({ status: 400, param: 'messages' })
    await expect(client.completions.create({ model: 'stories260K', prompt: 'x', temperature: 9 })).rejects.toMatchObject({ status: 400, param: 'temperature' })
    const raw = await fetch(`${base}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model": ' })
    expect(raw.status).toBe(400)
    expect(await raw.json()).toMatchObject({ error: { type: 'invalid_request_error', code: 'invalid_json', param: null } })
    const big = await fetch(`${base}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'stories260K', prompt: 'x'.repeat(2 << 20) }) })
    expect(big.status).toBe(413)
    expect((await big.json()).error.code).toBe('request_too_large')
    // and the server still answers
    expect((await client.completions.create({ model: 'stories260K', prompt: c.prompt, max_tokens: 5, temperature: 0 })).choices[0].text).toBe(want(5))
  })
})
