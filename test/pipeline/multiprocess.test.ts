import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { cpuBackend, evenRanges, generate } from '@shardmesh/engine'
import { createTokenizer, syntheticModel, SYNTHETIC_PRESETS } from '@shardmesh/model'
import { Endpoint, SessionDriver } from '@shardmesh/pipeline'
import { loadModel } from '@shardmesh/model/node'
import type { MeshNode } from '@shardmesh/mesh'
import type { ModelConfig } from '@shardmesh/model'
import { storiesDir } from '../fixtures.ts'
import { startNode } from './local.ts'
import { spawnPeers } from './processes.ts'
import type { PeerProcesses } from './processes.ts'

const dir = storiesDir()
const golden = JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf8')) as { cases: Array<{ tag: string, prompt_tokens: number[], steps: number, num_prompt_tokens: number, generated_tokens: number[] }> }
const cases = golden.cases.filter(c => c.tag === 'main')

describe('stage peers in separate processes', () => {
  const cleanup: Array<() => Promise<void>> = []
  afterAll(async () => { for (const f of cleanup.reverse()) await f() })

  async function head (config: ModelConfig): Promise<SessionDriver> {
    const node: MeshNode = await startNode()
    const driver = new SessionDriver({ endpoint: new Endpoint(node), config })
    await driver.start()
    cleanup.push(async () => { await driver.stop(); await node.stop() })
    return driver
  }

  it.each([1, 2, 3, 5])('stories260K over %i peer process(es) gives the golden tokens for concurrent sessions', async (n) => {
    const model = await loadModel(join(dir, 'stories260K.gguf'))
    const peers: PeerProcesses = await spawnPeers(join(dir, 'stories260K.gguf'), evenRanges(model.config.nLayers, n))
    cleanup.push(peers.stop)
    const driver = await head(model.config)
    const got = await Promise.all(cases.map(async c => (await driver.generate({ route: peers.route, promptTokens: c.prompt_tokens, maxTokens: c.steps - c.num_prompt_tokens + 1 })).tokens))
    got.forEach((t, i) => { expect(t).toEqual(cases[i].generated_tokens) })
  })

  it('a synthetic model over 3 processes equals its single-process sampled run', async () => {
    const model = syntheticModel(SYNTHETIC_PRESETS['tiny-gqa2'])
    const peers = await spawnPeers('synthetic:tiny-gqa2', evenRanges(model.config.nLayers, 3))
    cleanup.push(peers.stop)
    const driver = await head(model.config)
    const promptTokens = createTokenizer(model.tokenizer!).encode('Once upon a time')
    const sampling = { temperature: 0.8, topP: 0.95, seed: 42 }
    const stage = await cpuBackend().createStage({ config: model.config, layers: [0, model.config.nLayers], tensors: model.tensors })
    const want = await generate({ sessions: [stage.createSession()], promptTokens, maxTokens: 40, contextLength: model.config.contextLength, sampling, stopIds: model.config.stopIds })
    const got = await driver.generate({ route: peers.route, promptTokens, maxTokens: 40, sampling })
    expect(got.tokens).toEqual(want.tokens)
    expect(got.finishReason).toBe(want.finishReason)
  })
})
