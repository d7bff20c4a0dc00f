import { ContextLengthError } from '@shardmesh/model'
import { StageInputError } from './errors.ts'
import type { ForwardOptions, SamplingParams, StageOutput, StageSession } from './types.ts'

/**
 * Run one step through a chain of stage sessions by hand: token ids into the first,
 * hidden states from each into the next, the last one's output back.
 */
export async function forwardChain (sessions: StageSession[], position: number, tokens: ArrayLike<number>, options: ForwardOptions = {}): Promise<StageOutput> {
  let out = await sessions[0].forward({ position, tokens }, sessions.length === 1 ? options : { signal: options.signal })
  for (let i = 1; i < sessions.length; i++) {
    if (out.hidden === undefined) throw new StageInputError(`stage ${i - 1} of the chain returned no hidden states`)
    out = await sessions[i].forward({ position, hidden: out.hidden }, i === sessions.length - 1 ? options : { signal: options.signal })
  }
  return out
}

export interface GenerateInit {
  /** The stages' sessions in pipeline order: the first embeds, the last has the head. */
  sessions: StageSession[]
  /** Prompt token ids, BOS included. */
  promptTokens: number[]
  /** Most tokens to generate. */
  maxTokens: number
  contextLength: number
  sampling?: SamplingParams
  /** Sampled ids that end generation (not included in the output). @default [] */
  stopIds?: number[]
  onToken?: (id: number) => void
  signal?: AbortSignal
}

export type FinishReason = 'stop' | 'length'

export interface Timings {
  prefillMs: number
  decodeMs: number
  /** Prompt positions per second of the prefill pass. */
  prefillTokensPerSecond: number
  /** Positions per second of the decode loop (one forward per generated token after the first). */
  decodeTokensPerSecond: number
}

export interface GenerateResult {
  tokens: number[]
  finishReason: FinishReason
  timings: Timings
}

/** Prefill the prompt in one pass, then decode one position at a time. */
export async function generate (init: GenerateInit): Promise<GenerateResult> {
  const { sessions, promptTokens, contextLength, signal } = init
  if (promptTokens.length === 0) throw new StageInputError('the prompt has no tokens (not even BOS)')
  if (promptTokens.length >= contextLength) {
    throw new ContextLengthError(`the prompt is ${promptTokens.length} tokens; the model's context is ${contextLength}, which leaves no room to generate`)
  }
  const sampling = init.sampling ?? {}
  const stop = new Set(init.stopIds ?? [])
  const maxTokens = Math.min(init.maxTokens, contextLength - promptTokens.length + 1)
  const tokens: number[] = []
  let finishReason: FinishReason = 'length'
  const t0 = performance.now()
  let out = await forwardChain(sessions, 0, promptTokens, { sample: sampling, signal })
  const t1 = performance.now()
  let position = promptTokens.length
  while (tokens.length < maxTokens) {
    const next = out.token!
    if (stop.has(next)) { finishReason = 'stop'; break }
    tokens.push(next)
    init.onToken?.(next)
    if (tokens.length === maxTokens) break
    out = await forwardChain(sessions, position, [next], { sample: sampling, signal })
    position++
  }
  return { tokens, finishReason, timings: timings(promptTokens.length, position - promptTokens.length, t0, t1, performance.now()) }
}

/** Prefill and decode rates from the clock at start, after prefill, and at the end. */
export function timings (promptTokens: number, decoded: number, t0: number, t1: number, t2: number): Timings {
  return {
    prefillMs: t1 - t0,
    decodeMs: t2 - t1,
    prefillTokensPerSecond: promptTokens / ((t1 - t0) / 1000),
    decodeTokensPerSecond: decoded <= 0 ? 0 : decoded / ((t2 - t1) / 1000)
  }
}
