import { afterAll, describe, expect, it } from 'vitest'
import { cpuBackend, generate } from '@shardmesh/engine'
import { createTokenizer, layerManifest, syntheticModel, SYNTHETIC_PRESETS } from '@shardmesh/model'
import type { Checkpoint } from '@shardmesh/model'
import { partSizes, plan } from '@shardmesh/pipeline'
import type { PlanMember, StrategyName } from '@shardmesh/pipeline'
import { PATIENT_PINGS, localPipeline } from './local.ts'
import type { LocalPipeline } from './local.ts'

const model = syntheticModel({ ...SYNTHETIC_PRESETS['tiny-gqa4-untied'], nLayers: 6, seed: 11 })
const tokenizer = createTokenizer(model.tokenizer!)

async function single (m: Checkpoint, prompt: string, sampling: { temperature: number, topK?: number, topP?: number, seed: number }, maxTokens: number): Promise<number[]> {
  const stage = await cpuBackend().createStage({ config: m.config, layers: [0, m.config.nLayers], tensors: m.tensors })
  const r = await generate({ sessions: [stage.createSession()], promptTokens: tokenizer.encode(prompt), maxTokens, contextLength: m.config.contextLength, sampling, stopIds: m.config.stopIds })
  await stage.close()
  return r.tokens
}

const members = (n: number): PlanMember[] => Array.from({ length: n }, (_, i) => ({
  peerId: `p${i}`,
  capabilities: {
    runtime: { name: i % 2 === 0 ? 'node' : 'firefox', version: '1' },
    backend: { kind: i === 1 ? 'webgpu' : 'cpu' },
    memoryBytes: 0,
    throughput: i === 2 ? { model: model.config.name, decodeTokensPerSecond: 40 * (i + 1) } : undefined
  }
}))

describe('synthetic model through in-process peers, planned by each strategy', () => {
  const running: LocalPipeline[] = []
  afterAll(async () => { await Promise.all(running.map(async p => { await p.stop() })) })

  const strategies: Array<[StrategyName, number]> = [['layer', 3], ['balanced', 3], ['hardware_aware', 2], ['browser_optimized', 4], ['custom', 2], ['attention_feedforward', 3], ['attention_feedforward', 4], ['attention_feedforward', 7], ['hybrid', 3], ['hybrid', 7]]
  it.each(strategies)('%s over %i peers: concurrent sampled sessions each equal their single-process run', async (strategy, n) => {
    const p = plan({
      config: model.config, sizes: partSizes(layerManifest(model)), members: members(n), strategy,
      allocation: strategy === 'custom' ? [{ range: [0, 1], peer: 'p1' }, { range: [1, 6], peer: 'p0' }] : undefined
    })
    if (strategy === 'hybrid') expect(p.stages[0].reason).toMatch(n > model.config.nLayers ? /^hybrid \(one part: split blocks/ : /^hybrid \(one part: /)
    if (strategy === 'attention_feedforward' || (strategy === 'hybrid' && n > model.config.nLayers)) {
      // the plan cuts blocks: some stage starts or ends between a block's attention and its feed-forward
      expect(p.stages.some(s => s.units !== undefined && (s.units[0] % 2 === 1 || s.units[1] % 2 === 1))).toBe(true)
      expect(p.stages.map(s => s.units ?? [2 * s.range[0], 2 * s.range[1]]).flat()).toEqual([0, ...p.stages.slice(1).flatMap(s => { const u = s.units ?? [2 * s.range[0], 2 * s.range[1]]; return [u[0], u[0]] }), 2 * model.config.nLayers])
    }
    // up to 8 nodes share this process's event loop: pings get the time a peer of its own would have
    const pipe = await localPipeline(model, p.stages.map(s => ({ layers: s.range, units: s.units })), { node: PATIENT_PINGS })
    running.push(pipe)
    const requests = [
      { prompt: 'Once upon a time', sampling: { temperature: 0, seed: 0 } },
      { prompt: 'the cat sat', sampling: { temperature: 0.9, seed: 7 } },
      { prompt: 'hello', sampling: { temperature: 1.1, topK: 20, topP: 0.9, seed: 123 } }
    ]
    const got = await Promise.all(requests.map(async r => (await pipe.driver.generate({ route: pipe.route, promptTokens: tokenizer.encode(r.prompt), maxTokens: 24, sampling: r.sampling })).tokens))
    // stopped before the next case starts: every node here shares this process, and a dozen idle pipelines slow its pings
    running.splice(running.indexOf(pipe), 1)
    await pipe.stop()
    for (let i = 0; i < requests.length; i++) {
      const want = await single(model, requests[i].prompt, requests[i].sampling, 24)
      expect(want.length).toBeGreaterThan(0)
      expect(got[i], `${strategy} ${requests[i].prompt}`).toEqual(want)
    }
  })
})
