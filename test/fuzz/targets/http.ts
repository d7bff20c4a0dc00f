import { join } from 'node:path'
import fc from 'fast-check'
import { expect } from 'vitest'
import { createTokenizer } from '@shardmesh/model'
import { loadModel } from '@shardmesh/model/node'
import { createOpenAiHandler } from '@shardmesh/pipeline'
import { startHttpServer } from '../../../node-bootstrap/src/http/server.ts'
import { storiesDir } from '../../fixtures.ts'
import { localPipeline } from '../../pipeline/local.ts'
import { arbitraryText, mutatedBytes, mutatedJson, Tally } from '../harness.ts'
import type { Target } from '../harness.ts'

/** Valid request bodies (a few tokens each, so the ones that stay valid generate quickly). */
const completion = fc.record({
  model: fc.constant('stories260K'),
  prompt: fc.oneof(fc.string({ maxLength: 40 }), fc.array(fc.string({ maxLength: 20 }), { minLength: 1, maxLength: 1 })),
  max_tokens: fc.integer({ min: 1, max: 4 }),
  temperature: fc.double({ min: 0, max: 2, noNaN: true }),
  top_p: fc.double({ min: 0, max: 1, noNaN: true }),
  seed: fc.nat(1000),
  stop: fc.array(fc.string({ minLength: 1, maxLength: 3 }), { maxLength: 2 }),
  stream: fc.boolean(),
  shardmesh: fc.record({ ft_level: fc.constantFrom('none', 'low', 'high') })
}, { requiredKeys: ['model', 'prompt', 'max_tokens'] })
const chat = fc.record({
  model: fc.constant('stories260K'),
  messages: fc.array(fc.record({ role: fc.constantFrom('system', 'user', 'assistant', 'developer'), content: fc.oneof(fc.string({ maxLength: 30 }), fc.array(fc.record({ type: fc.constant('text'), text: fc.string({ maxLength: 10 }) }), { maxLength: 2 })) }), { minLength: 1, maxLength: 3 }),
  max_completion_tokens: fc.integer({ min: 1, max: 4 }),
  temperature: fc.double({ min: 0, max: 2, noNaN: true }),
  stream: fc.boolean(),
  stream_options: fc.record({ include_usage: fc.boolean() })
}, { requiredKeys: ['model', 'messages', 'max_completion_tokens'] })
const KEYS = ['model', 'prompt', 'messages', 'role', 'content', 'max_tokens', 'max_completion_tokens', 'stop', 'stream', 'stream_options', 'shardmesh', 'n', 'top_k']

export interface HttpFuzz {
  targets: Target[]
  stop: () => Promise<void>
}

/**
 * Request bodies sent to the real HTTP server (node-bootstrap's, on an ephemeral port) with
 * the OpenAI handler over a one-stage in-process pipeline of stories260K. Every answer is a
 * 4xx JSON error or a completion; never a 5xx, a dropped connection or a crashed process.
 */
export async function httpTargets (): Promise<HttpFuzz> {
  const model = await loadModel(join(storiesDir(), 'stories260K.gguf'))
  const tokenizer = createTokenizer(model.tokenizer!)
  const pipe = await localPipeline(model, [[0, model.config.nLayers]])
  const handler = createOpenAiHandler({
    models: () => [{ id: 'stories260K', config: model.config, tokenizer, generate: async ({ faultTolerance: _, ...r }) => await pipe.driver.generate({ ...r, route: pipe.route }) }]
  })
  const server = await startHttpServer({ port: 0, host: '127.0.0.1', routes: {}, handlers: [handler] })

  async function post (path: string, body: Uint8Array, tally: Tally): Promise<void> {
    tally.cases++
    const res = await fetch(`${server.url}${path}`, { method: 'POST', body: body as Uint8Array<ArrayBuffer>, headers: { 'content-type': 'application/json' } })
    const text = await res.text()
    expect(res.status, text).toBeLessThan(500)
    if (res.status === 200) {
      tally.decoded++
      if (res.headers.get('content-type')?.startsWith('text/event-stream') === true) expect(text.endsWith('data: [DONE]\n\n'), text).toBe(true)
      else expect(JSON.parse(text).choices).toHaveLength(1)
      return
    }
    expect(res.status, text).toBeGreaterThanOrEqual(400)
    const err = JSON.parse(text).error
    expect(typeof err.message, text).toBe('string')
    expect(err.type).toBe('invalid_request_error')
    tally.rejected.set(String(res.status), (tally.rejected.get(String(res.status)) ?? 0) + 1)
  }

  const t = (name: string, runs: number, path: string, body: fc.Arbitrary<Uint8Array>): Target => {
    const tally = new Tally()
    return { name, runs, tally, property: () => fc.asyncProperty(body, async b => { await post(path, b, tally) }) }
  }
  const encode = (v: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(v))
  return {
    targets: [
      t('http-completions/bytes', 150, '/v1/completions', fc.oneof({ weight: 20, arbitrary: arbitraryText() }, { weight: 1, arbitrary: fc.constant(new Uint8Array((1 << 20) + 1).fill(0x20)) })),
      t('http-completions/mutated', 250, '/v1/completions', fc.oneof({ weight: 4, arbitrary: mutatedJson(completion, KEYS) }, { weight: 1, arbitrary: mutatedBytes(completion.map(encode)) })),
      t('http-chat/bytes', 150, '/v1/chat/completions', arbitraryText()),
      t('http-chat/mutated', 250, '/v1/chat/completions', fc.oneof({ weight: 4, arbitrary: mutatedJson(chat, KEYS) }, { weight: 1, arbitrary: mutatedBytes(chat.map(encode)) }))
    ],
    stop: async () => {
      await server.close()
      await pipe.stop()
    }
  }
}
