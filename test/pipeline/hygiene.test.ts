/**
 * Stage sessions do not leak: an idle session expires, one upstream peer cannot hold more
 * than its cap, and a head that moves a session to a new route closes it on every hop of
 * the old one (a hop whose upstream died would never hear the close otherwise).
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { loadModel } from '@shardmesh/model/node'
import { encodeControl } from '@shardmesh/protocol'
import { storiesDir } from '../fixtures.ts'
import { localPipeline } from './local.ts'
import type { LocalPipeline } from './local.ts'

const dir = storiesDir()
const golden = JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf8')) as { cases: Array<{ tag: string, prompt_tokens: number[], steps: number, num_prompt_tokens: number, generated_tokens: number[] }> }
const main = golden.cases.filter(c => c.tag === 'main')[0]
const hex = (n: number): string => n.toString(16).padStart(32, '0')

describe('stage session hygiene', () => {
  let p: LocalPipeline | undefined
  afterEach(async () => { await p?.stop(); p = undefined })

  it('a session without frames for idleTtlMs is dropped and counted; a live one is not', async () => {
    const model = await loadModel(join(dir, 'stories260K.gguf'))
    p = await localPipeline(model, [[0, 5]], { server: { idleTtlMs: 300 } })
    const sampling = { temperature: 0, topK: 0, topP: 1, seed: 0 }
    await p.headEndpoint.send(p.route[0], encodeControl({ type: 'open', session: hex(1), model: model.config.name, hop: 0, route: p.route, head: p.headEndpoint.self(), sampling }))
    await expect.poll(() => p!.servers[0].stats().sessions).toBe(1)
    await expect.poll(() => p!.servers[0].stats(), { timeout: 5000 }).toMatchObject({ sessions: 0, expired: 1 })
    // a generation longer than the TTL keeps its session alive (frames arrive all the time)
    const r = await p.driver.generate({ route: p.route, promptTokens: main.prompt_tokens, maxTokens: main.steps - main.num_prompt_tokens + 1 })
    expect(r.tokens).toEqual(main.generated_tokens)
    expect(p.servers[0].stats().expired).toBe(1)
  })

  it('an upstream peer holding its cap of sessions gets TOO_MANY_SESSIONS for the next; others still run', async () => {
    const model = await loadModel(join(dir, 'stories260K.gguf'))
    p = await localPipeline(model, [[0, 5]], { server: { maxSessionsPerUpstream: 2 } })
    const sampling = { temperature: 0, topK: 0, topP: 1, seed: 0 }
    for (const n of [1, 2, 3]) await p.headEndpoint.send(p.route[0], encodeControl({ type: 'open', session: hex(n), model: model.config.name, hop: 0, route: p.route, head: p.headEndpoint.self(), sampling }))
    await expect.poll(() => p!.endpoints[0].rejections().TOO_MANY_SESSIONS).toBe(1)
    expect(p.servers[0].stats().sessions).toBe(2)
    // the head's own session is refused too while the two flood sessions are open (a limit
    // refusal is recoverable, class LIMITED, but this route has no other peer to move to)…
    const refused = await p.driver.generate({ route: p.route, promptTokens: main.prompt_tokens, maxTokens: 4 }).then(() => undefined, (err: unknown) => err as Error & { code?: string, cause?: Error & { code?: string } })
    expect(refused?.name).toBe('RecoveryFailedError')
    expect(refused?.cause?.code ?? refused?.code).toBe('TOO_MANY_SESSIONS')
    // …and runs once they are closed
    for (const n of [1, 2]) await p.headEndpoint.send(p.route[0], encodeControl({ type: 'close', session: hex(n) }))
    await expect.poll(() => p!.servers[0].stats().sessions).toBe(0)
    const r = await p.driver.generate({ route: p.route, promptTokens: main.prompt_tokens, maxTokens: main.steps - main.num_prompt_tokens + 1 })
    expect(r.tokens).toEqual(main.generated_tokens)
  })

  it('a session moved by re-prefill is closed on every hop of its old route', async () => {
    const model = await loadModel(join(dir, 'stories260K.gguf'))
    p = await localPipeline(model, [[0, 2], [2, 4], [4, 5], [0, 2], [2, 4], [4, 5]])
    const [a, b] = [p.route.slice(0, 3), p.route.slice(3)]
    let seen = 0
    const r = await p.driver.generate({
      route: a, promptTokens: main.prompt_tokens, maxTokens: main.steps - main.num_prompt_tokens + 1,
      // the middle hop of route a reports a failure of its own (out of memory); the session moves to route b
      onToken: () => { if (++seen === 5) void p!.endpoints[1].send(p!.headEndpoint.self(), encodeControl({ type: 'error', session: [...p!.servers[1].sessionIds()][0], code: 'MEMORY', message: 'out of memory' })) },
      repair: async () => ({ route: b, path: 'reprefill', strategy: 'failover' })
    })
    expect(r.tokens).toEqual(main.generated_tokens)
    expect(r.recoveries).toMatchObject([{ ok: true, class: 'MEMORY', path: 'reprefill', stages: [0, 1, 2] }])
    await expect.poll(() => p!.servers.map(s => s.stats().sessions)).toEqual([0, 0, 0, 0, 0, 0])
    expect(p.servers.slice(0, 3).every(s => s.stats().expired === 0)).toBe(true)
  })
})
