import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { loadModel } from '@shardmesh/model/node'
import { Endpoint, SessionDriver } from '@shardmesh/pipeline'
import { activationPayload, encodeControl, encodeFrame } from '@shardmesh/protocol'
import { storiesDir } from '../fixtures.ts'
import { localPipeline, startNode } from './local.ts'
import type { LocalPipeline } from './local.ts'

const dir = storiesDir()
const golden = JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf8')) as { cases: Array<{ tag: string, prompt_tokens: number[], steps: number, num_prompt_tokens: number, generated_tokens: number[] }> }
const c = golden.cases[0]

describe('bad input on the stage protocol', () => {
  const running: LocalPipeline[] = []
  afterAll(async () => { await Promise.all(running.map(async p => { await p.stop() })) })

  it('is refused and counted while real sessions go on to the golden tokens', async () => {
    const model = await loadModel(join(dir, 'stories260K.gguf'))
    const p = await localPipeline(model, [[0, 2], [2, 5]], { maxFrameBytes: 1 << 20 })
    running.push(p)
    const rogueNode = await startNode()
    const rogue = new Endpoint(rogueNode)
    await rogue.start()
    const rogueDriver = new SessionDriver({ endpoint: rogue, config: model.config })
    await rogueDriver.start()
    const [s0, s1] = p.route
    const session = new Uint8Array(16).fill(7)
    const sessionHex = '07'.repeat(16)
    const dim = model.config.dim
    const nan = new Float32Array(dim).fill(Number.NaN)

    const real = Promise.all([0, 1].map(async () => (await p.driver.generate({ route: p.route, promptTokens: c.prompt_tokens, maxTokens: c.steps - c.num_prompt_tokens + 1 })).tokens))
    // garbage, a truncated frame, a frame for no session, a bad control message
    await rogue.send(s0, new TextEncoder().encode('this is not a frame, just some text long enough to pass the header'))
    const frame = encodeFrame({ kind: 'tokens', session, step: 0, position: 0, dtype: 'I32', shape: [1], payload: new Uint8Array(4) })
    await rogue.send(s0, frame.subarray(0, frame.length - 2))
    await rogue.send(s0, frame)
    await rogue.send(s0, new Uint8Array([0x53, 0x43, 1, 0x7b]))
    // a session of its own on stage 1, fed NaN activations: only that session fails
    await rogue.send(s1, encodeControl({ type: 'open', session: sessionHex, model: model.config.name, hop: 1, route: p.route, head: rogue.self(), sampling: { temperature: 0, topK: 0, topP: 1, seed: 0 } }))
    await rogue.send(s1, encodeFrame({ kind: 'activations', session, step: 0, position: 0, dtype: 'F32', shape: [1, dim], payload: activationPayload(nan, 'F32') }))
    // a token id outside the vocabulary from a head: its session fails with the stage's reason
    await expect(rogueDriver.generate({ route: p.route, promptTokens: [1, 100000], maxTokens: 3 })).rejects.toMatchObject({ name: 'StageFailedError', code: 'BAD_SHAPE' })
    // a message over the size limit: the rogue's stream is cut, nothing else
    await rogue.send(s0, new Uint8Array(2 << 20)).catch(() => {})

    const tokens = await real
    for (const t of tokens) expect(t).toEqual(c.generated_tokens)
    await expect.poll(() => p.endpoints[0].rejections(), { timeout: 30_000 }).toMatchObject({ BAD_MAGIC: 1, TRUNCATED: 1, UNKNOWN_SESSION: 1, CONTROL: 1, BAD_SHAPE: 1, STREAM: 1 })
    expect(p.endpoints[1].rejections().NON_FINITE).toBe(1)
    expect(p.servers[1].stats().failedSessions).toBe(1)
    expect(p.servers[0].stats().failedSessions).toBe(1)
    // and the pipeline still serves new sessions afterwards
    expect((await p.driver.generate({ route: p.route, promptTokens: c.prompt_tokens, maxTokens: 20 })).tokens).toEqual(c.generated_tokens.slice(0, 20))
    await rogueDriver.stop()
    await rogue.stop()
    await rogueNode.stop()
  })
})
