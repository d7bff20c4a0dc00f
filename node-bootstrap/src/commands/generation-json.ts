import type { FinishReason, Timings } from '@shardmesh/engine'
import type { Tokenizer } from '@shardmesh/model'

export interface GenerationOutput {
  model: string
  backend: string
  stages: Array<[number, number]>
  promptTokens: number[]
  tokens: number[]
  finishReason: FinishReason
  timings: Timings
}

const round = (x: number): number => Math.round(x * 100) / 100

/** Timings in the JSON's snake_case, to 0.01. */
export function timingsJson (t: Timings): Record<string, number> {
  return {
    prefill_ms: round(t.prefillMs),
    decode_ms: round(t.decodeMs),
    prefill_tokens_per_second: round(t.prefillTokensPerSecond),
    decode_tokens_per_second: round(t.decodeTokensPerSecond)
  }
}

/** The object `generate --json` prints, local or through a mesh (which adds `plan`). */
export function generationJson (g: GenerationOutput, tokenizer: Tokenizer): Record<string, unknown> {
  return {
    model: g.model,
    backend: g.backend,
    stages: g.stages,
    prompt_tokens: g.promptTokens,
    generated_tokens: g.tokens,
    finish_reason: g.finishReason,
    text: tokenizer.decode([...g.promptTokens.slice(1), ...g.tokens]),
    completion: tokenizer.decode(g.tokens, { prev: g.promptTokens[g.promptTokens.length - 1] }),
    timings: timingsJson(g.timings)
  }
}
