import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { evenRanges } from '@shardmesh/engine'
import { createTokenizer } from '@shardmesh/model'
import { loadModel } from '@shardmesh/model/node'
import { storiesDir } from '../fixtures.ts'
import { localPipeline } from './local.ts'
import type { LocalPipeline } from './local.ts'

interface GoldenCase { tag: string, prompt: string, steps: number, num_prompt_tokens: number, prompt_tokens: number[], generated_tokens: number[] }
const dir = storiesDir()
const golden = JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf8')) as { cases: GoldenCase[] }
const cases = golden.cases.filter(c => c.tag === 'main')

describe('stories260K through in-process libp2p peers', () => {
  const running: LocalPipeline[] = []
  afterAll(async () => { await Promise.all(running.map(async p => { await p.stop() })) })

  it.each([1, 2, 3, 5])('over %i peer(s): every golden case, all sessions at once, gives the golden tokens', async (peers) => {
    const model = await loadModel(join(dir, 'stories260K.gguf'))
    const tokenizer = createTokenizer(model.tokenizer!)
    const p = await localPipeline(model, evenRanges(model.config.nLayers, peers))
    running.push(p)
    const results = await Promise.all(cases.map(async c => {
      const promptTokens = tokenizer.encode(c.prompt)
      expect(promptTokens).toEqual(c.prompt_tokens)
      const streamed: number[] = []
      const r = await p.driver.generate({ route: p.route, promptTokens, maxTokens: c.steps - c.num_prompt_tokens + 1, onToken: t => { streamed.push(t) } })
      expect(streamed).toEqual(r.tokens)
      return r.tokens
    }))
    results.forEach((tokens, i) => { expect(tokens, cases[i].prompt).toEqual(cases[i].generated_tokens) })
    // every stage forwarded for every session, and closed them all
    for (const s of p.servers) expect(s.stats().forwards).toBeGreaterThan(0)
    // a pass takes at most ⌈sessions / stages⌉ steps: with more sessions than stages some
    // passes computed several sessions at once; with no more, every pass computed one
    const stats = JSON.stringify(p.servers.map(s => s.stats()))
    if (cases.length > peers) expect(p.servers.some(s => s.stats().batches < s.stats().forwards), stats).toBe(true)
    else expect(p.servers.every(s => s.stats().batches === s.stats().forwards), stats).toBe(true)
    await expect.poll(() => p.servers.map(s => s.stats().sessions), { timeout: 30_000 }).toEqual(p.servers.map(() => 0))
  })

  it('a session aborted mid-generation (its client went away) ends alone: the others still give the golden tokens and every stage closes it', async () => {
    const model = await loadModel(join(dir, 'stories260K.gguf'))
    const tokenizer = createTokenizer(model.tokenizer!)
    const p = await localPipeline(model, evenRanges(model.config.nLayers, 2))
    running.push(p)
    const controller = new AbortController()
    let seen = 0
    const aborted = p.driver.generate({
      route: p.route, promptTokens: tokenizer.encode(cases[0].prompt), maxTokens: 200, signal: controller.signal,
      onToken: () => { if (++seen === 5) controller.abort(new Error('the client went away')) }
    })
    const others = cases.map(async c => await p.driver.generate({ route: p.route, promptTokens: tokenizer.encode(c.prompt), maxTokens: c.steps - c.num_prompt_tokens + 1 }))
    await expect(aborted).rejects.toThrow('the client went away')
    const results = await Promise.all(others)
    results.forEach((r, i) => { expect(r.tokens, cases[i].prompt).toEqual(cases[i].generated_tokens) })
    expect(seen).toBe(5)
    await expect.poll(() => p.servers.map(s => s.stats().sessions), { timeout: 30_000 }).toEqual([0, 0])
    expect(p.servers.map(s => s.stats().failedSessions)).toEqual([0, 0])
  })

  it.each([2, 3])('over %i peer(s) with the prompt sent in chunks of 2 positions: golden tokens, one sampled token per step', async (peers) => {
    const model = await loadModel(join(dir, 'stories260K.gguf'))
    const tokenizer = createTokenizer(model.tokenizer!)
    const p = await localPipeline(model, evenRanges(model.config.nLayers, peers), { prefillChunk: 2 })
    running.push(p)
    const prompts = cases.map(c => tokenizer.encode(c.prompt))
    const results = await Promise.all(cases.map(async (c, i) => await p.driver.generate({ route: p.route, promptTokens: prompts[i], maxTokens: c.steps - c.num_prompt_tokens + 1 })))
    results.forEach((r, i) => { expect(r.tokens, cases[i].prompt).toEqual(cases[i].generated_tokens) })
    // every stage ran each chunk: ceil(L / 2) prompt frames, then one per decode step (a step
    // whose token was a stop id counts too); the head got no stray sampled frames
    const frames = results.reduce((a, r, i) => a + Math.ceil(prompts[i].length / 2) + r.tokens.length - (r.finishReason === 'stop' ? 0 : 1), 0)
    expect(p.servers.map(s => s.stats().forwards)).toEqual(p.servers.map(() => frames))
    expect(p.headEndpoint.rejections()).toEqual({})
    // a chunk the first stage refuses fails its session at once (the error arrives while the
    // head is still sending chunks, before it waits for any token), and the pipeline goes on
    await expect(p.driver.generate({ route: p.route, promptTokens: [1, 5, model.config.vocabSize + 3, 7, 8, 9], maxTokens: 3 })).rejects.toMatchObject({ name: 'StageFailedError', message: expect.stringMatching(/outside the vocabulary/) })
    const again = await p.driver.generate({ route: p.route, promptTokens: prompts[0], maxTokens: cases[0].steps - cases[0].num_prompt_tokens + 1 })
    expect(again.tokens).toEqual(cases[0].generated_tokens)
  })
})
