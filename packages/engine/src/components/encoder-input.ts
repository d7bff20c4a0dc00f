import { ContextLengthError } from '@shardmesh/model'
import type { ComponentModelConfig, EncoderConfig } from '@shardmesh/model'
import { firstNonFinite } from '../activations.ts'
import { NonFiniteActivationError, StageInputError } from '../errors.ts'
import type { EncoderComponent, EncoderInput } from './types.ts'

/** A checked encoder input: token ids, patches `(n, patchSize²·channels)`, or hidden states `(n, dim)`. */
export type CheckedEncoderInput =
  | { kind: 'tokens', n: number, tokens: Uint32Array }
  | { kind: 'patches', n: number, patches: Float32Array }
  | { kind: 'hidden', n: number, hidden: Float32Array }

/** What a stage needs to know to check its input. */
export interface EncoderFacts {
  model: ComponentModelConfig
  component: EncoderComponent
  config: EncoderConfig
  embed: boolean
  label: string
}

/** Every check of an encoder input, with the engine's error names; nothing is computed. */
export function checkEncoderInput (stage: EncoderFacts, input: EncoderInput): CheckedEncoderInput {
  const { model, component, config, embed, label } = stage
  const image = model.kind === 'two_tower' && component === 'image' ? model.image : undefined
  const what = image !== undefined ? 'pixels' : 'token ids'
  if (typeof input !== 'object' || input === null) throw new StageInputError(`stage ${label} got no input`)
  if ('hidden' in input) {
    if (embed) throw new StageInputError(`stage ${label} embeds ${what}; it got hidden states`)
    const { hidden, n } = input
    if (!Number.isSafeInteger(n) || n < 1) throw new StageInputError(`hidden states need a positive whole number of positions, got ${n}`)
    if (!(hidden instanceof Float32Array) || hidden.length !== n * config.dim) {
      throw new StageInputError(`hidden states of ${n} positions of dim ${config.dim} have ${n * config.dim} values, got ${hidden?.length}`)
    }
    if (image !== undefined && n !== patchCount(image)) throw new StageInputError(`an image is ${patchCount(image)} patches; got hidden states of ${n} positions`)
    contextFits(stage, n)
    const bad = firstNonFinite(hidden)
    if (bad >= 0) throw new NonFiniteActivationError(`hidden state value ${bad} (position ${Math.floor(bad / config.dim)}) is ${hidden[bad]}`)
    return { kind: 'hidden', n, hidden: hidden.slice() }
  }
  if (!embed) throw new StageInputError(`stage ${label} takes hidden states, not ${'pixels' in input ? 'pixels' : 'token ids'}`)
  if ('pixels' in input) {
    if (image === undefined) throw new StageInputError(`${component} takes token ids, not pixels`)
    const { pixels } = input
    const { imageSize, channels } = image
    const want = imageSize * imageSize * channels
    if (!(pixels instanceof Float32Array) || pixels.length !== want) {
      throw new StageInputError(`an image is ${imageSize}×${imageSize}×${channels} = ${want} values (row-major, channel-last), got ${pixels?.length}`)
    }
    const bad = firstNonFinite(pixels)
    if (bad >= 0) throw new StageInputError(`pixel value ${bad} is ${pixels[bad]}`)
    return { kind: 'patches', n: patchCount(image), patches: patchRows(pixels, image) }
  }
  if (!('tokens' in input)) throw new StageInputError(`stage ${label} takes ${what}`)
  if (image !== undefined) throw new StageInputError('image takes pixels, not token ids')
  const vocabSize = model.kind === 'two_tower' ? model.text.vocabSize : model.vocabSize
  const n = input.tokens.length
  if (n === 0) throw new StageInputError('input has no positions')
  contextFits(stage, n)
  const tokens = new Uint32Array(n)
  for (let t = 0; t < n; t++) {
    const id = input.tokens[t]
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) throw new StageInputError(`token id ${id} at input index ${t} is outside the vocabulary [0, ${vocabSize})`)
    tokens[t] = id
  }
  return { kind: 'tokens', n, tokens }
}

function contextFits (stage: EncoderFacts, n: number): void {
  if (n > stage.config.contextLength) throw new ContextLengthError(`${n} positions exceed the context length ${stage.config.contextLength} of ${stage.model.name}'s ${stage.component}`)
}

/** Patches of one image: `(imageSize / patchSize)²`. */
export function patchCount (image: { imageSize: number, patchSize: number }): number {
  return (image.imageSize / image.patchSize) ** 2
}

/**
 * The image `(size, size, channels)` as patch rows `(patches, patchSize²·channels)`: patches in
 * row-major order of the patch grid, each patch's pixels row-major and channel-last.
 */
export function patchRows (pixels: Float32Array, image: { imageSize: number, patchSize: number, channels: number }): Float32Array {
  const { imageSize: size, patchSize: p, channels: ch } = image
  const grid = size / p
  const rowLength = p * ch // one pixel row of a patch
  const out = new Float32Array(grid * grid * p * p * ch)
  let o = 0
  for (let py = 0; py < grid; py++) {
    for (let px = 0; px < grid; px++) {
      for (let dy = 0; dy < p; dy++) {
        const from = ((py * p + dy) * size + px * p) * ch
        out.set(pixels.subarray(from, from + rowLength), o)
        o += rowLength
      }
    }
  }
  return out
}
