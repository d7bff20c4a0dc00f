import { ContextLengthError } from '@shardmesh/model'
import type { ModelConfig } from '@shardmesh/model'
import { firstNonFinite } from './activations.ts'
import { NonFiniteActivationError, StageInputError } from './errors.ts'
import { stageLabel } from './stage-shape.ts'
import type { StageInput } from './types.ts'

export interface StageFacts {
  config: ModelConfig
  units: [number, number]
  embed: boolean
}

/** A validated input: token ids for an embedding stage, else hidden states `(n, dim)`. */
export type CheckedInput = { n: number, tokens: Uint32Array } | { n: number, hidden: Float32Array }

/** Every backend's input checks (same errors and messages); nothing here touches the session. */
export function checkInput (stage: StageFacts, position: number, input: StageInput): CheckedInput {
  const { config, embed } = stage
  if (input.position !== position) {
    throw new StageInputError(`input starts at position ${input.position}, the session is at ${position}`)
  }
  let checked: CheckedInput
  if ('tokens' in input) {
    if (!embed) throw new StageInputError(`stage ${stageLabel(stage.units)} takes hidden states, not token ids`)
    const n = input.tokens.length
    if (n === 0) throw new StageInputError('input has no positions')
    const tokens = new Uint32Array(n)
    for (let t = 0; t < n; t++) {
      const id = input.tokens[t]
      if (!Number.isInteger(id) || id < 0 || id >= config.vocabSize) {
        throw new StageInputError(`token id ${id} at input index ${t} is outside the vocabulary [0, ${config.vocabSize})`)
      }
      tokens[t] = id
    }
    checked = { n, tokens }
  } else {
    if (embed) throw new StageInputError(`stage ${stageLabel(stage.units)} embeds token ids; it got hidden states`)
    const { hidden } = input
    if (hidden.length === 0 || hidden.length % config.dim !== 0) {
      throw new StageInputError(`hidden states of ${hidden.length} values are not a whole number of positions of dim ${config.dim}`)
    }
    const bad = firstNonFinite(hidden)
    if (bad >= 0) throw new NonFiniteActivationError(`hidden state value ${bad} (position ${position + Math.floor(bad / config.dim)}) is ${hidden[bad]}`)
    checked = { n: hidden.length / config.dim, hidden }
  }
  if (position + checked.n > config.contextLength) {
    throw new ContextLengthError(`positions ${position}..${position + checked.n - 1} exceed the context length ${config.contextLength} of ${config.name}`)
  }
  return checked
}

/** Checks a rewind of a session that holds `held` positions to `position`; returns it. */
export function checkTruncate (position: number, held: number): number {
  if (!Number.isInteger(position) || position < 0 || position > held) {
    throw new StageInputError(`cannot truncate to position ${position}: the session holds ${held}`)
  }
  return position
}
