/**
 * A running session survives SIGKILLed stage peers with exactly the tokens of a failure-free
 * run: stage peers are separate processes, each range has a standby process serving it too,
 * the head notices the lost hop from its connection closing and resumes on the standby,
 * either by replaying the upstream output log into it or by re-prefilling the new route.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { cpuBackend, generate } from '@shardmesh/engine'
import { createTokenizer, syntheticModel, SYNTHETIC_PRESETS } from '@shardmesh/model'
import { loadModel } from '@shardmesh/model/node'
import { Endpoint, SessionDriver } from '@shardmesh/pipeline'
import type { RecoveryDecision, RecoveryEvent, Repair } from '@shardmesh/pipeline'
import type { ModelConfig } from '@shardmesh/model'
import type { RouteHop } from '@shardmesh/protocol'
import { storiesDir } from '../fixtures.ts'
import { startNode } from './local.ts'
import { spawnPeers } from './processes.ts'
import type { PeerProcesses } from './processes.ts'

const dir = storiesDir()
const gguf = join(dir, 'stories260K.gguf')
const golden = JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf8')) as { cases: Array<{ tag: string, prompt_tokens: number[], steps: number, num_prompt_tokens: number, generated_tokens: number[] }> }
const main = golden.cases.filter(c => c.tag === 'main')[0]
const RANGES: Array<[number, number]> = [[0, 2], [2, 4], [4, 5]]

describe('a session survives SIGKILLed stage peers (separate processes)', () => {
  const cleanup: Array<() => Promise<void>> = []
  afterEach(async () => { for (const f of cleanup.splice(0).reverse()) await f() })

  async function mesh (model: string, config: ModelConfig, ranges: Parameters<typeof spawnPeers>[1] = RANGES): Promise<{ primaries: PeerProcesses, standbys: PeerProcesses, driver: SessionDriver }> {
    const [primaries, standbys] = await Promise.all([spawnPeers(model, ranges), spawnPeers(model, ranges)])
    cleanup.push(primaries.stop, standbys.stop)
    const node = await startNode()
    const driver = new SessionDriver({ endpoint: new Endpoint(node), config })
    await driver.start()
    cleanup.push(async () => { await driver.stop(); await node.stop() })
    return { primaries, standbys, driver }
  }

  /** Each lost hop goes to the standby of its range, once it confirms it serves the range. */
  function toStandbys (driver: SessionDriver, standbys: RouteHop[], model: string, path: RecoveryDecision['path']): Repair {
    return async ({ route, lost }) => {
      const next = route.map((h, i) => lost.includes(h.peerId) ? standbys[i] : h)
      await Promise.all(next.filter((h, i) => h !== route[i]).map(async h => await driver.prepare(h, model)))
      return { route: next, path, strategy: 'failover' }
    }
  }

  /** Generate along the primaries, SIGKILLing the given stages' processes when `at` tokens have come out. */
  async function run (setup: Awaited<ReturnType<typeof mesh>>, config: ModelConfig, req: { promptTokens: number[], maxTokens: number, sampling?: { temperature: number, topP: number, seed: number } }, kill: number[], at: number, path: RecoveryDecision['path']): Promise<{ tokens: number[], events: RecoveryEvent[] }> {
    const events: RecoveryEvent[] = []
    let seen = 0
    const result = await setup.driver.generate({
      ...req,
      route: setup.primaries.route,
      repair: toStandbys(setup.driver, setup.standbys.route, config.name, path),
      onRecovery: e => { events.push(e) },
      onToken: () => {
        if (++seen === at) for (const k of kill) setup.primaries.children[k].kill('SIGKILL')
      }
    })
    return { tokens: result.tokens, events }
  }

  it.each([
    { name: 'first stage', kill: [0], path: 'replay' }, { name: 'middle stage', kill: [1], path: 'replay' }, { name: 'last stage', kill: [2], path: 'replay' },
    { name: 'first and middle stages at once', kill: [0, 1], path: 'replay' }, { name: 'middle and last stages at once', kill: [1, 2], path: 'replay' },
    { name: 'middle stage', kill: [1], path: 'reprefill' }
  ] as const)('stories260K: the $name killed mid-generation, resumed by $path, gives the golden tokens', async ({ kill, path }) => {
    const model = await loadModel(gguf)
    const setup = await mesh(gguf, model.config)
    const { tokens, events } = await run(setup, model.config, { promptTokens: main.prompt_tokens, maxTokens: main.steps - main.num_prompt_tokens + 1 }, [...kill], 10, path)
    expect(tokens).toEqual(main.generated_tokens)
    expect(events).toHaveLength(1)
    const [e] = events
    expect(e).toMatchObject({ ok: true, path, class: 'CONNECTION' })
    expect(e.failed.sort(), JSON.stringify({ e, p: setup.primaries.route.map(h => h.peerId), s: setup.standbys.route.map(h => h.peerId) })).toEqual(kill.map(k => setup.primaries.route[k].peerId).sort())
    if (path === 'replay') {
      expect(e.stages).toEqual([...kill])
      // the head had sent the prompt and 10 tokens; all but the last were held by the route
      expect(e.tokensReplayed).toBe(main.prompt_tokens.length + 9)
    } else {
      expect(e.stages).toEqual([0, 1, 2])
    }
  })

  // strategy attention_feedforward: stages that start and end inside blocks
  it.each(['replay', 'reprefill'] as const)('stories260K cut inside blocks (units [0, 3), [3, 7), [7, 10)): the middle stage killed, resumed by %s, gives the golden tokens', async path => {
    const model = await loadModel(gguf)
    const setup = await mesh(gguf, model.config, [{ layers: [0, 2], units: [0, 3] }, { layers: [1, 4], units: [3, 7] }, { layers: [3, 5], units: [7, 10] }])
    expect(setup.standbys.route.map(h => h.units)).toEqual([[0, 3], [3, 7], [7, 10]])
    const { tokens, events } = await run(setup, model.config, { promptTokens: main.prompt_tokens, maxTokens: main.steps - main.num_prompt_tokens + 1 }, [1], 10, path)
    expect(tokens).toEqual(main.generated_tokens)
    expect(events).toHaveLength(1)
    expect(events[0]).toMatchObject({ ok: true, path, failed: [setup.primaries.route[1].peerId] })
  })

  it.each([{ name: 'first', kill: [0] }, { name: 'middle', kill: [1] }, { name: 'last', kill: [2] }, { name: 'first and middle', kill: [0, 1] }])('warm mirrors (parallel): the $name stage killed, its mirror takes over with nothing replayed; golden tokens', async ({ kill }) => {
    const model = await loadModel(gguf)
    const setup = await mesh(gguf, model.config)
    // every hop's standby is its mirror: sent every frame the hop is sent, it keeps the same KV cache
    const route: RouteHop[] = setup.primaries.route.map((h, i) => ({ ...h, mirror: { peerId: setup.standbys.route[i].peerId, addrs: setup.standbys.route[i].addrs } }))
    const promote: Repair = async ({ route: r, lost }) => {
      const warm = r.map((h, i) => i).filter(i => lost.includes(r[i].peerId) && r[i].mirror !== undefined)
      return { route: r.map((h, i) => warm.includes(i) ? { peerId: h.mirror!.peerId, addrs: h.mirror!.addrs, layers: h.layers } : h), path: 'replay', strategy: 'parallel', warm }
    }
    const events: RecoveryEvent[] = []
    let seen = 0
    const r = await setup.driver.generate({
      route, promptTokens: main.prompt_tokens, maxTokens: main.steps - main.num_prompt_tokens + 1, repair: promote,
      onRecovery: e => { events.push(e) },
      onToken: () => { if (++seen === 10) for (const k of kill) setup.primaries.children[k].kill('SIGKILL') }
    })
    expect(r.tokens).toEqual(main.generated_tokens)
    expect(events.every(e => e.ok && e.path === 'replay' && e.tokensReplayed === 0), JSON.stringify({ events, route: route.map(h => [h.peerId.slice(-6), h.mirror?.peerId.slice(-6)]) })).toBe(true)
    expect([...new Set(events.flatMap(e => e.stages))].sort()).toEqual([...kill])
  })

  it('a synthetic model with sampling: the middle stage killed during decode gives the single-process sampled run', async () => {
    const model = syntheticModel(SYNTHETIC_PRESETS['tiny-gqa4-untied'])
    const promptTokens = createTokenizer(model.tokenizer!).encode('Once upon a time')
    const sampling = { temperature: 0.8, topP: 0.95, seed: 42 }
    const stage = await cpuBackend().createStage({ config: model.config, layers: [0, model.config.nLayers], tensors: model.tensors })
    const want = await generate({ sessions: [stage.createSession()], promptTokens, maxTokens: 40, contextLength: model.config.contextLength, sampling, stopIds: model.config.stopIds })
    await stage.close()
    const setup = await mesh('synthetic:tiny-gqa4-untied', model.config, [[0, 1], [1, 3], [3, 4]])
    const { tokens, events } = await run(setup, model.config, { promptTokens, maxTokens: 40, sampling }, [1], 7, 'replay')
    expect(tokens).toEqual(want.tokens)
    expect(events.map(e => e.ok)).toEqual([true])
  })

  it('a stage that hangs (SIGSTOP: its connections stay open) is found and replaced; golden tokens', async () => {
    const model = await loadModel(gguf)
    const setup = await mesh(gguf, model.config)
    let seen = 0
    const events: RecoveryEvent[] = []
    const r = await setup.driver.generate({
      route: setup.primaries.route, promptTokens: main.prompt_tokens, maxTokens: main.steps - main.num_prompt_tokens + 1,
      repair: toStandbys(setup.driver, setup.standbys.route, model.config.name, 'replay'),
      onRecovery: e => { events.push(e) },
      onToken: () => { if (++seen === 12) setup.primaries.children[1].kill('SIGSTOP') }
    })
    expect(r.tokens).toEqual(main.generated_tokens)
    expect(events).toMatchObject([{ ok: true, failed: [setup.primaries.route[1].peerId], stages: [1], path: 'replay' }])
    // found by the head's probe (TIMEOUT) or by the upstream stage's connection monitor closing the link (CONNECTION), whichever came first
    expect(['TIMEOUT', 'CONNECTION']).toContain(events[0].class)
  })

  it('without a repair (level none) the session ends with a clear error soon after the kill, not at the step timeout', async () => {
    const model = await loadModel(gguf)
    const setup = await mesh(gguf, model.config)
    let seen = 0
    const err = await setup.driver.generate({
      route: setup.primaries.route, promptTokens: main.prompt_tokens, maxTokens: 200,
      onToken: () => { if (++seen === 5) setup.primaries.children[1].kill('SIGKILL') }
    }).catch((e: unknown) => e as Error & { code?: string })
    expect(err).toMatchObject({ name: 'RecoveryFailedError', code: 'NO_RECOVERY' })
    expect((err as Error).message).toMatch(/fault tolerance level none/)
    expect(seen).toBeLessThan(200)
  })
})
