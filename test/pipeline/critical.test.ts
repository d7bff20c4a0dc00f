/**
 * Level critical: every stage on three peer processes, the session run on three routes in
 * lockstep and the majority's token taken. A peer that corrupts its activations is outvoted,
 * found by digest and evicted; the tokens stay golden. A crashed replica is recovered inside
 * its route while the others go on.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { loadModel } from '@shardmesh/model/node'
import { Endpoint, SessionDriver, generateCritical } from '@shardmesh/pipeline'
import type { RecoveryEvent, Repair } from '@shardmesh/pipeline'
import type { RouteHop } from '@shardmesh/protocol'
import { storiesDir } from '../fixtures.ts'
import { startNode } from './local.ts'
import { spawnPeers } from './processes.ts'

const dir = storiesDir()
const gguf = join(dir, 'stories260K.gguf')
const golden = JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf8')) as { cases: Array<{ tag: string, prompt_tokens: number[], steps: number, num_prompt_tokens: number, generated_tokens: number[] }> }
const main = golden.cases.filter(c => c.tag === 'main')[0]
const RANGES: Array<[number, number]> = [[0, 3], [3, 5]]

describe('fault tolerance level critical (three replicas per stage, separate processes)', () => {
  const cleanup: Array<() => Promise<void>> = []
  afterEach(async () => { for (const f of cleanup.splice(0).reverse()) await f() })

  async function driver (): Promise<SessionDriver> {
    const node = await startNode()
    const d = new SessionDriver({ endpoint: new Endpoint(node), config: (await loadModel(gguf)).config })
    await d.start()
    cleanup.push(async () => { await d.stop(); await node.stop() })
    return d
  }

  it.each([
    { by: '0.01', how: 'too little to change a token: found by the audit of digests', why: /differ from the other replicas' of layers \[0, 3\] \(audit\)/ },
    { by: '50', how: 'enough to change a token: outvoted, then found by digest', why: /where the majority sampled/ }
  ])('a peer adding $by to its activations ($how) is evicted; the tokens are golden', async ({ by, why }) => {
    // replica 2's first stage lies from position 12 on
    const [r0, r1, r2] = await Promise.all([spawnPeers(gguf, RANGES), spawnPeers(gguf, RANGES), spawnPeers(gguf, RANGES, [{ SHARDMESH_TEST_CORRUPT_FROM: '12', SHARDMESH_TEST_CORRUPT_BY: by }])])
    cleanup.push(r0.stop, r1.stop, r2.stop)
    const d = await driver()
    const evicted: Array<[string, string]> = []
    const out = await generateCritical(d, {
      routes: [r0.route, r1.route, r2.route], promptTokens: main.prompt_tokens, maxTokens: main.steps - main.num_prompt_tokens + 1,
      onEvict: (peer, why) => { evicted.push([peer, why]) }
    })
    expect(out.tokens).toEqual(main.generated_tokens)
    expect(out.evicted).toEqual([r2.route[0].peerId])
    expect(evicted[0][1]).toMatch(why)
  })

  it('a replica whose stage is SIGKILLed recovers inside its route; the session stays golden', async () => {
    const [r0, r1, r2, spare] = await Promise.all([spawnPeers(gguf, RANGES), spawnPeers(gguf, RANGES), spawnPeers(gguf, RANGES), spawnPeers(gguf, RANGES)])
    cleanup.push(r0.stop, r1.stop, r2.stop, spare.stop)
    const d = await driver()
    const toSpare: Repair = async ({ route, lost }) => {
      const next: RouteHop[] = route.map((h, i) => lost.includes(h.peerId) ? spare.route[i] : h)
      await Promise.all(next.filter((h, i) => h !== route[i]).map(async h => await d.prepare(h, (await loadModel(gguf)).config.name)))
      return { route: next, path: 'replay', strategy: 'failover' }
    }
    const events: RecoveryEvent[] = []
    let seen = 0
    const out = await generateCritical(d, {
      routes: [r0.route, r1.route, r2.route], repairs: [toSpare, toSpare, toSpare],
      promptTokens: main.prompt_tokens, maxTokens: main.steps - main.num_prompt_tokens + 1,
      onRecovery: e => { events.push(e) },
      onToken: () => { if (++seen === 8) r1.children[1].kill('SIGKILL') }
    })
    expect(out.tokens).toEqual(main.generated_tokens)
    expect(out.evicted).toEqual([])
    expect(events).toMatchObject([{ ok: true, failed: [r1.route[1].peerId], stages: [1] }])
  })
})
