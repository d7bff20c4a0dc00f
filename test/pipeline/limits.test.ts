/**
 * A stage's per-peer limit refusal (here BYTES_IN_FLIGHT: a prefill frame larger than the stage
 * lets one upstream queue) is classified LIMITED, which is recoverable: the session backs off
 * and moves to another peer serving the range, and finishes with the golden tokens. Real libp2p
 * nodes and stage servers in this process.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { cpuBackend } from '@shardmesh/engine'
import { loadModel } from '@shardmesh/model/node'
import { Endpoint, StageServer, classify } from '@shardmesh/pipeline'
import type { RecoveryEvent, Repair } from '@shardmesh/pipeline'
import { storiesDir } from '../fixtures.ts'
import { localPipeline, startNode } from './local.ts'
import type { LocalPipeline } from './local.ts'

const dir = storiesDir()
const golden = JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf8')) as { cases: Array<{ tag: string, prompt_tokens: number[], steps: number, num_prompt_tokens: number, generated_tokens: number[] }> }
const main = golden.cases.filter(c => c.tag === 'main')[0]

describe('a session refused by a stage limit', () => {
  const cleanup: Array<() => Promise<void>> = []
  let p: LocalPipeline | undefined
  afterEach(async () => { for (const f of cleanup.splice(0).reverse()) await f(); await p?.stop(); p = undefined })

  it('BYTES_IN_FLIGHT is LIMITED (recoverable): the session moves to another peer of the range and gives the golden tokens', async () => {
    const model = await loadModel(join(dir, 'stories260K.gguf'))
    // stage 1 lets an upstream queue 1 KiB: the 5-token prefill (5 × 64 F32 = 1280 bytes) is refused, a decode step (256) is not
    p = await localPipeline(model, [[0, 2], [2, 5]], { server: { limits: { maxBytesInFlight: 1024 } } })
    const node = await startNode()
    const endpoint = new Endpoint(node)
    const standby = new StageServer({ endpoint, backend: cpuBackend(), config: model.config, tensors: model.tensors })
    await standby.start()
    await standby.serve([2, 5])
    cleanup.push(async () => { await standby.stop(); await node.stop() })
    const other = { peerId: node.peerId.toString(), addrs: node.getMultiaddrs().map(String), layers: [2, 5] as [number, number] }
    const asked: string[] = []
    const repair: Repair = async ({ route, lost, class: cls }) => {
      asked.push(cls)
      const next = route.map((h, i) => lost.includes(h.peerId) && i === 1 ? other : h)
      await p!.driver.prepare(other, model.config.name)
      return { route: next, path: 'replay', strategy: 'failover' }
    }
    const events: RecoveryEvent[] = []
    const out = await p.driver.generate({ route: p.route, promptTokens: main.prompt_tokens, maxTokens: main.steps - main.num_prompt_tokens + 1, repair, onRecovery: e => { events.push(e) } })
    expect(out.tokens).toEqual(main.generated_tokens)
    expect(p.endpoints[1].rejections().BYTES_IN_FLIGHT).toBe(1)
    expect(asked).toEqual(['LIMITED'])
    expect(events).toHaveLength(1)
    expect(events[0]).toMatchObject({ class: 'LIMITED', failed: [p.route[1].peerId], stages: [1], ok: true })
    expect(standby.stats().forwards).toBeGreaterThan(0)
  }, 60_000)

  it('classify: the limit codes are LIMITED and name the refusing peer', () => {
    for (const code of ['RATE_LIMITED', 'BYTES_IN_FLIGHT', 'TOO_MANY_SESSIONS']) {
      const err = Object.assign(new Error(code), { name: 'StageFailedError', code, peerId: 'peer-a' })
      expect(classify(err)).toEqual({ class: 'LIMITED', peer: 'peer-a' })
    }
  })
})
