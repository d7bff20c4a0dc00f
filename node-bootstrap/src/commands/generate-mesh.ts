import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { SamplingParams } from '@shardmesh/engine'
import { planView } from '@shardmesh/pipeline'
import { CliError } from '../errors.ts'
import { bootMesh } from './start.ts'
import { generationJson, timingsJson } from './generation-json.ts'

type Values = Record<string, string | boolean | undefined>

/** Longest wait for the fresh mesh to plan and serve before the generation starts. */
const READY_TIMEOUT_MS = 120_000

/**
 * `generate --local-peers N`: a bootstrap in this process (model imported into `--store`, else a
 * temporary store) and N peer processes; one generation through the mesh, then everything stops.
 * Prints what `--local` prints, plus the plan.
 */
export async function generateMesh (values: Values, run: { maxTokens: number, sampling: SamplingParams }): Promise<void> {
  const json = values.json === true
  const temp = typeof values.store === 'string' ? undefined : await mkdtemp(join(tmpdir(), 'shardmesh-generate-'))
  const mesh = await bootMesh({ ...values, store: values.store ?? temp, listen: undefined })
  try {
    if (mesh.pipeline === undefined) throw new CliError('--model is required')
    const head = await mesh.pipeline.ready({ signal: AbortSignal.timeout(READY_TIMEOUT_MS) })
    const { tokenizer, config } = head.served()
    const promptTokens = tokenizer.encode(String(values.prompt ?? ''))
    const stream = tokenizer.streamDecoder()
    if (!json) for (const id of promptTokens.slice(1)) process.stdout.write(stream.push(id))
    const result = await head.generate({
      promptTokens,
      maxTokens: run.maxTokens,
      sampling: run.sampling,
      stopIds: config.stopIds,
      onToken: json ? undefined : id => { process.stdout.write(stream.push(id)) }
    })
    const timings = timingsJson(result.timings)
    if (json) {
      const output = { model: config.name, backend: 'cpu', stages: result.plan.stages.map(s => s.range), promptTokens, tokens: result.tokens, finishReason: result.finishReason, timings: result.timings }
      process.stdout.write(JSON.stringify({ ...generationJson(output, tokenizer), plan: planView(result.plan) }) + '\n')
    } else {
      process.stdout.write(stream.flush() + '\n')
      process.stderr.write(`\n${config.name} through ${result.plan.stages.length} stage(s): ${promptTokens.length} prompt tokens, ${result.tokens.length} generated (${result.finishReason}); decode ${timings.decode_tokens_per_second} tok/s\n`)
    }
  } finally {
    await mesh.stop()
    if (temp !== undefined) await rm(temp, { recursive: true, force: true })
  }
}
