import { availableThreads, cpuBackend, evenRanges, generate, webgpuBackend } from '@shardmesh/engine'
import { createTokenizer } from '@shardmesh/model'
import { loadModel, progressBar } from '@shardmesh/model/node'
import { CliError } from '../errors.ts'
import { generationJson, timingsJson } from './generation-json.ts'

type Values = Record<string, string | boolean | undefined>

function number (values: Values, flag: string, check: (n: number) => boolean, what: string): number {
  const raw = values[flag]
  const n = Number(raw)
  if (typeof raw !== 'string' || raw.trim() === '' || !Number.isFinite(n) || !check(n)) {
    throw new CliError(`--${flag} must be ${what}, got "${String(raw)}"`)
  }
  return n
}

export async function generateCommand (values: Values): Promise<void> {
  const meshRun = values['local-peers'] !== undefined
  if (meshRun && values.local === true) throw new CliError('give --local (every layer in this process) or --local-peers N (a fresh mesh), not both')
  if (values.local !== true && !meshRun) throw new CliError('generate runs with --local (every layer in this process) or --local-peers N (a fresh mesh of N peer processes)')
  if (typeof values.model !== 'string') throw new CliError('--model is required (a GGUF, llama2.c .bin, Hugging Face folder, or http(s) URL)')
  if (values.backend !== 'cpu' && values.backend !== 'webgpu') throw new CliError(`--backend must be cpu or webgpu, got "${String(values.backend)}"`)
  const maxTokens = number(values, 'max-tokens', n => Number.isInteger(n) && n >= 0, 'a whole number >= 0')
  const temperature = number(values, 'temperature', n => n >= 0, 'a number >= 0')
  const topK = number(values, 'top-k', n => Number.isInteger(n) && n >= 0, 'a whole number >= 0')
  const topP = number(values, 'top-p', n => n > 0 && n <= 1, 'a number in (0, 1]')
  const seed = number(values, 'seed', n => Number.isInteger(n), 'an integer')
  const nStages = number(values, 'stages', n => Number.isInteger(n) && n >= 1, 'a whole number >= 1')
  const threads = values.threads === undefined ? availableThreads() : number(values, 'threads', n => Number.isInteger(n) && n >= 1, 'a whole number >= 1')
  const json = values.json === true
  if (meshRun) {
    await (await import('./generate-mesh.ts')).generateMesh(values, { maxTokens, sampling: { temperature, topK, topP, seed } })
    return
  }

  const model = await loadModel(values.model, {
    tokenizerPath: typeof values.tokenizer === 'string' ? values.tokenizer : undefined,
    onProgress: json ? undefined : progressBar(process.stderr)
  })
  if (model.tokenizer === undefined) throw new CliError(`${model.source} has no tokenizer inside; pass --tokenizer`)
  const { config } = model
  if (nStages > config.nLayers) throw new CliError(`--stages ${nStages} exceeds the model's ${config.nLayers} layers`)
  const tokenizer = createTokenizer(model.tokenizer)
  const prompt = String(values.prompt ?? '')
  const promptTokens = tokenizer.encode(prompt)

  // webgpu: Dawn in Node; without a GPU, VK_ICD_FILENAMES picks SwiftShader (packages/engine README)
  const backend = values.backend === 'webgpu' ? webgpuBackend() : cpuBackend({ threads })
  const stages = await Promise.all(evenRanges(config.nLayers, nStages).map(layers => backend.createStage({ config, layers, tensors: model.tensors })))
  const sessions = stages.map(s => s.createSession())
  const stream = tokenizer.streamDecoder()
  if (!json) {
    // echo the prompt as run.c does, then stream the continuation
    for (const id of promptTokens.slice(1)) process.stdout.write(stream.push(id))
  }
  const result = await generate({
    sessions,
    promptTokens,
    maxTokens,
    contextLength: config.contextLength,
    sampling: { temperature, topK, topP, seed },
    stopIds: config.stopIds,
    onToken: json ? undefined : id => { process.stdout.write(stream.push(id)) }
  })
  const timings = timingsJson(result.timings)
  if (json) {
    const output = { model: config.name, backend: backend.name, stages: stages.map(s => s.layers), promptTokens, tokens: result.tokens, finishReason: result.finishReason, timings: result.timings }
    process.stdout.write(JSON.stringify(generationJson(output, tokenizer)) + '\n')
  } else {
    process.stdout.write(stream.flush() + '\n')
    process.stderr.write(`\n${config.name}: ${promptTokens.length} prompt tokens, ${result.tokens.length} generated (${result.finishReason}); prefill ${timings.prefill_tokens_per_second} tok/s, decode ${timings.decode_tokens_per_second} tok/s\n`)
  }
  await Promise.all(stages.map(s => s.close()))
}
