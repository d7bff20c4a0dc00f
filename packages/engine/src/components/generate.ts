import type { ComponentModel } from '@shardmesh/model'
import { cpuBackend } from '../cpu/backend.ts'
import { StageConfigError, StageInputError } from '../errors.ts'
import type { FinishReason } from '../generate.ts'
import type { SamplingParams } from '../types.ts'
import type { ComponentBackend } from './types.ts'

export interface EncoderDecoderGenerateInit {
  /** An encoder–decoder model: config and tensors under their component names. */
  model: ComponentModel
  /** The encoder's input token ids. */
  prompt: number[]
  /** The decoder's first token. @default model.config.decoder.startId ?? 0 */
  decoderStart?: number
  /** Most tokens to generate (at most the decoder's context length). */
  maxTokens: number
  /** @default greedy */
  sampling?: SamplingParams
  /** Sampled ids that end generation (not included in the output). @default model.config.decoder.stopIds ?? [] */
  stopIds?: number[]
  /** @default cpuBackend() */
  backend?: ComponentBackend
  signal?: AbortSignal
}

export interface EncoderDecoderResult {
  /** The generated tokens (neither the start token nor the stop id). */
  tokens: number[]
  finishReason: FinishReason
  /** The encoder output `(memoryLength, encoder.dim)` the decoder attended to. */
  memory: Float32Array
  memoryLength: number
  /** The logits `(vocab)` of each decoder step: `logits[i]` gave `tokens[i]` (and a last one the stop id, when it stopped). */
  logits: Float32Array[]
}

/**
 * The single-process reference of an encoder–decoder model: one encoder stage over all its
 * layers gives the memory, one decoder stage over all its layers takes it with `setMemory`
 * and decodes from the start token one position at a time (greedy or sampled as `generate`).
 * What a chain of stages on several peers must reproduce bit for bit.
 */
export async function encoderDecoderGenerate (init: EncoderDecoderGenerateInit): Promise<EncoderDecoderResult> {
  const { model, signal } = init
  const { config, tensors } = model
  if (config.kind !== 'encoder_decoder') throw new StageConfigError(`${config.name} is a ${config.kind} model, not an encoder_decoder one`)
  if (!Number.isSafeInteger(init.maxTokens) || init.maxTokens < 0) throw new StageInputError(`maxTokens must be a whole number >= 0, got ${init.maxTokens}`)
  const backend = init.backend ?? cpuBackend()
  const start = init.decoderStart ?? config.decoder.startId ?? 0
  const stop = new Set(init.stopIds ?? config.decoder.stopIds ?? [])
  const encoder = await backend.createEncoderStage({ model: config, component: 'encoder', layers: [0, config.encoder.nLayers], tensors })
  let decoder
  try {
    const out = await encoder.forward({ tokens: init.prompt }, { signal })
    if (!('hidden' in out)) throw new StageInputError('the encoder gave no memory')
    decoder = await backend.createDecoderStage({ model: config, layers: [0, config.decoder.nLayers], tensors })
    const session = decoder.createSession()
    session.setMemory(out.hidden, out.n)
    const tokens: number[] = []
    const logits: Float32Array[] = []
    let finishReason: FinishReason = 'length'
    // each step takes one decoder position: at most contextLength of them
    const maxTokens = Math.min(init.maxTokens, config.decoder.contextLength)
    let token = start
    for (let position = 0; tokens.length < maxTokens; position++) {
      const step = await session.forward({ position, tokens: [token] }, { sample: init.sampling ?? {}, signal })
      logits.push(step.logits!)
      token = step.token!
      if (stop.has(token)) { finishReason = 'stop'; break }
      tokens.push(token)
    }
    return { tokens, finishReason, memory: out.hidden, memoryLength: out.n, logits }
  } finally {
    await encoder.close()
    await decoder?.close()
  }
}
