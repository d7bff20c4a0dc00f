import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { forwardChain, generate } from '@shardmesh/engine'
import type { Backend } from '@shardmesh/engine'
import { createTokenizer } from '@shardmesh/model'
import { loadModel } from '@shardmesh/model/node'
import type { Checkpoint } from '@shardmesh/model'
import { storiesDir } from '../fixtures.ts'

interface GoldenCase {
  tag: string
  prompt: string
  steps: number
  prompt_tokens: number[]
  num_prompt_tokens: number
  output_tokens: number[]
  generated_tokens: number[]
  full_sequence: number[]
  text: string
  logits?: Record<string, { token_fed: number, argmax: number, python_float64: number[] }>
}

const dir = storiesDir()
const golden = JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf8')) as { cases: GoldenCase[], encode_cases: Array<{ text: string, tokens_with_bos: number[] }> }

const formats: Array<[string, () => Promise<Checkpoint>]> = [
  ['llama2.c .bin + tok512.bin', async () => await loadModel(join(dir, 'stories260K.bin'), { tokenizerPath: join(dir, 'tok512.bin') })],
  ['GGUF', async () => await loadModel(join(dir, 'stories260K.gguf'))]
]

/** The golden suite for one backend; issue 3 runs it for webgpu too. */
export function goldenSuite (backendName: string, makeBackend: () => Promise<Backend>): void {
  describe.each(formats)(`stories260K golden (%s, ${backendName})`, (_label, load) => {
    it('encodes every encode case to the recorded ids', async () => {
      const model = await load()
      const tokenizer = createTokenizer(model.tokenizer!)
      for (const c of golden.encode_cases) expect(tokenizer.encode(c.text), JSON.stringify(c.text)).toEqual(c.tokens_with_bos)
    })

    it.each(golden.cases.map(c => [c.tag + ': ' + JSON.stringify(c.prompt), c] as const))('reproduces tokens and text of %s', async (_name, c) => {
      const model = await load()
      const tokenizer = createTokenizer(model.tokenizer!)
      const promptTokens = tokenizer.encode(c.prompt)
      expect(promptTokens).toEqual(c.prompt_tokens)
      const backend = await makeBackend()
      const stage = await backend.createStage({ config: model.config, layers: [0, model.config.nLayers], tensors: model.tensors })
      const result = await generate({
        sessions: [stage.createSession()],
        promptTokens,
        // run.c forwards `steps` positions counting the prompt; the last output is never fed
        maxTokens: c.steps - c.num_prompt_tokens + 1,
        contextLength: model.config.contextLength,
        stopIds: model.config.stopIds
      })
      expect(result.tokens).toEqual(c.generated_tokens)
      expect(tokenizer.decode([...promptTokens.slice(1), ...result.tokens])).toBe(c.text)
      await stage.close()
    })

    it('matches the float64 reference logits within 1e-4', async () => {
      const model = await load()
      const c = golden.cases.find(x => x.logits !== undefined)!
      const positions = Object.keys(c.logits!).map(Number)
      const last = Math.max(...positions)
      const backend = await makeBackend()
      const stage = await backend.createStage({ config: model.config, layers: [0, model.config.nLayers], tensors: model.tensors })
      const out = await forwardChain([stage.createSession()], 0, c.full_sequence.slice(0, last + 1), { allLogits: true })
      const vocab = model.config.vocabSize
      for (const p of positions) {
        const ref = c.logits![String(p)]
        const row = out.logits!.subarray(p * vocab, (p + 1) * vocab)
        let worst = 0
        for (let i = 0; i < vocab; i++) worst = Math.max(worst, Math.abs(row[i] - ref.python_float64[i]))
        expect(worst, `position ${p}`).toBeLessThan(1e-4)
      }
      await stage.close()
    })
  })
}
