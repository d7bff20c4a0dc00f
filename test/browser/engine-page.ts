// Entry of the browser bundle the WebGPU page test loads: the same @shardmesh/engine and
// @shardmesh/model code as Node (esbuild, platform browser: the package.json `browser` map
// swaps in navigator.gpu and the .wgsl text imports). It runs the stories260K golden cases
// on the webgpu backend and hands the outputs back; the Node test compares them.
import { forwardChain, generate, webgpuBackend } from '@shardmesh/engine'
import type { GpuInfo } from '@shardmesh/engine'
import { createTokenizer, readGguf, readLlama2c, readLlama2cTokenizer } from '@shardmesh/model'
import type { Checkpoint } from '@shardmesh/model'

export interface PageCase {
  tag: string
  prompt: string
  steps: number
  num_prompt_tokens: number
  full_sequence: number[]
  /** Positions whose logits the reference recorded. */
  logitPositions: number[]
}

export interface PageResult {
  format: string
  tag: string
  prompt: string
  promptTokens: number[]
  tokens: number[]
  text: string
  /** Logits `(positions, vocab)` at `logitPositions`, when asked. */
  logits?: number[][]
}

async function bytes (path: string): Promise<Uint8Array> {
  const res = await fetch(path)
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`)
  return new Uint8Array(await res.arrayBuffer())
}

async function load (format: string): Promise<Checkpoint> {
  if (format === 'gguf') return readGguf(await bytes('/models/stories260K.gguf'), 'stories260K.gguf')
  const model = readLlama2c(await bytes('/models/stories260K.bin'), 'stories260K.bin')
  model.tokenizer = readLlama2cTokenizer(await bytes('/models/tok512.bin'), model.config.vocabSize, 'tok512.bin')
  return model
}

async function runGolden (formats: string[], cases: PageCase[]): Promise<{ info: GpuInfo, results: PageResult[] }> {
  const backend = webgpuBackend()
  const results: PageResult[] = []
  for (const format of formats) {
    const model = await load(format)
    const tokenizer = createTokenizer(model.tokenizer!)
    const { config } = model
    const stage = await backend.createStage({ config, layers: [0, config.nLayers], tensors: model.tensors })
    for (const c of cases) {
      const promptTokens = tokenizer.encode(c.prompt)
      const out = await generate({
        sessions: [stage.createSession()],
        promptTokens,
        maxTokens: c.steps - c.num_prompt_tokens + 1,
        contextLength: config.contextLength,
        stopIds: config.stopIds
      })
      const result: PageResult = { format, tag: c.tag, prompt: c.prompt, promptTokens, tokens: out.tokens, text: tokenizer.decode([...promptTokens.slice(1), ...out.tokens]) }
      if (c.logitPositions.length > 0) {
        const last = Math.max(...c.logitPositions)
        const all = (await forwardChain([stage.createSession()], 0, c.full_sequence.slice(0, last + 1), { allLogits: true })).logits!
        result.logits = c.logitPositions.map(p => Array.from(all.subarray(p * config.vocabSize, (p + 1) * config.vocabSize)))
      }
      results.push(result)
    }
    await stage.close()
  }
  return { info: await backend.info(), results }
}

(globalThis as unknown as { shardmesh: unknown }).shardmesh = { runGolden }
