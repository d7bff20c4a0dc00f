import { CorruptCheckpointError, MissingFieldError, UnsupportedArchitectureError } from '../errors.ts'
import { tensorByteLength } from '../quant.ts'
import type { DType, Tensor } from '../types.ts'
import { componentConfig, componentNames } from './types.ts'
import type { ComponentModelConfig, ComponentName } from './types.ts'

/** Where a tensor of a component belongs: its input embedding, one layer, or its head (final norm and projection or LM head). */
export type ComponentPart = 'embedding' | 'head' | number

/** Block tensors of every layer, as `<component>.layers.<l>.<name>`. */
export const BLOCK_TENSORS = ['attn_norm', 'wq', 'wk', 'wv', 'wo', 'ffn_norm', 'w1', 'w2', 'w3'] as const
const FFN_TENSORS = new Set(['ffn_norm', 'w1', 'w2', 'w3'])

/** Cross-attention tensors of every decoder layer, between self-attention and the feed-forward. */
export const CROSS_TENSORS = ['cross_norm', 'cross_q', 'cross_k', 'cross_v', 'cross_o'] as const

/**
 * Every tensor of one component with its shape and part, in file order: embedding, layers,
 * head. Matrices are `[out, in]`, applied as `out[i] = Σ_j W[i][j] · x[j]`.
 */
export function componentTensorShapes (config: ComponentModelConfig, component: ComponentName): Map<string, { shape: number[], part: ComponentPart }> {
  const c = componentConfig(config, component)
  const { dim, hiddenDim, nHeads, nKvHeads, headDim } = c
  const qDim = nHeads * headDim
  const kvDim = nKvHeads * headDim
  const shapes = new Map<string, { shape: number[], part: ComponentPart }>()
  const add = (name: string, shape: number[], part: ComponentPart): void => { shapes.set(`${component}.${name}`, { shape, part }) }
  if (config.kind === 'two_tower') {
    if (component === 'text') add('embed', [config.text.vocabSize, dim], 'embedding')
    else add('patch_embed', [dim, config.image.patchSize ** 2 * config.image.channels], 'embedding')
  } else {
    add('embed', [config.vocabSize, dim], 'embedding')
  }
  for (let l = 0; l < c.nLayers; l++) {
    const p = `layers.${l}.`
    add(p + 'attn_norm', [dim], l)
    add(p + 'wq', [qDim, dim], l)
    add(p + 'wk', [kvDim, dim], l)
    add(p + 'wv', [kvDim, dim], l)
    add(p + 'wo', [dim, qDim], l)
    if (component === 'decoder' && config.kind === 'encoder_decoder') {
      add(p + 'cross_norm', [dim], l)
      add(p + 'cross_q', [qDim, dim], l)
      add(p + 'cross_k', [kvDim, config.encoder.dim], l) // over the encoder's memory
      add(p + 'cross_v', [kvDim, config.encoder.dim], l)
      add(p + 'cross_o', [dim, qDim], l)
    }
    add(p + 'ffn_norm', [dim], l)
    add(p + 'w1', [hiddenDim, dim], l)
    add(p + 'w2', [dim, hiddenDim], l)
    add(p + 'w3', [hiddenDim, dim], l)
  }
  add('final_norm', [dim], 'head')
  if (config.kind === 'two_tower') add('proj', [config.embedDim, dim], 'head')
  else if (component === 'decoder') add('head', [config.vocabSize, dim], 'head')
  return shapes
}

/** Every tensor of the model, component after component. */
export function componentModelShapes (config: ComponentModelConfig): Map<string, { shape: number[], part: ComponentPart }> {
  return new Map(componentNames(config).flatMap(name => [...componentTensorShapes(config, name)]))
}

/** Bytes of one component's parts: what a peer serving it whole, or some of its layers, fetches. */
export interface ComponentPartSizes {
  embedding: number
  /** Per layer, in order. */
  layers: number[]
  /**
   * Per unit, two per layer: layer l's attention half (unit 2l: self-attention, and in a
   * decoder its cross-attention) and its feed-forward half (unit 2l + 1). They add up to `layers`.
   */
  units: number[]
  /** Projection or LM head and the final norm. */
  head: number
  /** Always false: no component shares its embedding with its head (the pipeline's PartSizes field). */
  tiedHead: false
}

/**
 * Bytes of each component's embedding, layers and head when stored in `dtype`: matrices in
 * `dtype` (a matrix whose rows are not whole blocks of 32 stays F32 under Q8_0/Q4_0, as
 * `convertTensor` keeps it), norm vectors in `dtype` for F32/F16/BF16 and F32 otherwise.
 */
export function componentPartSizes (config: ComponentModelConfig, dtype: DType = 'F32'): Record<string, ComponentPartSizes> {
  const blocked = dtype === 'Q8_0' || dtype === 'Q4_0'
  const out: Record<string, ComponentPartSizes> = {}
  for (const component of componentNames(config)) {
    const nLayers = componentConfig(config, component).nLayers
    const sizes: ComponentPartSizes = { embedding: 0, layers: new Array(nLayers).fill(0), units: new Array(2 * nLayers).fill(0), head: 0, tiedHead: false }
    for (const [name, { shape, part }] of componentTensorShapes(config, component)) {
      const keep = blocked && (shape.length === 1 || shape[shape.length - 1] % 32 !== 0)
      const bytes = tensorByteLength(keep ? 'F32' : dtype, shape, name)
      if (part === 'embedding') sizes.embedding += bytes
      else if (part === 'head') sizes.head += bytes
      else {
        sizes.layers[part] += bytes
        sizes.units[2 * part + (FFN_TENSORS.has(name.slice(name.lastIndexOf('.') + 1)) ? 1 : 0)] += bytes
      }
    }
    out[component] = sizes
  }
  return out
}

/**
 * Checks that `tensors` are exactly the model's: missing → MissingFieldError; not part of
 * the model → UnsupportedArchitectureError; wrong shape or byte length → CorruptCheckpointError.
 */
export function checkComponentTensors (config: ComponentModelConfig, tensors: Map<string, Tensor>, source: string): void {
  // a claimed layer count beyond the tensors present is refused before any per-layer work
  const layers = componentNames(config).reduce((sum, name) => sum + componentConfig(config, name).nLayers, 0)
  if (layers * BLOCK_TENSORS.length > tensors.size) {
    throw new MissingFieldError(`${source}: ${layers} layers need at least ${layers * BLOCK_TENSORS.length} layer tensors, the model has ${tensors.size} tensors in all`)
  }
  const shapes = componentModelShapes(config)
  const missing = [...shapes.keys()].filter(name => !tensors.has(name))
  if (missing.length > 0) {
    const list = missing.length > 8 ? `${missing.slice(0, 8).join(', ')} and ${missing.length - 8} more` : missing.join(', ')
    throw new MissingFieldError(`${source}: missing tensor${missing.length > 1 ? 's' : ''} ${list}`)
  }
  for (const [name, t] of tensors) {
    const want = shapes.get(name)?.shape
    if (want === undefined) throw new UnsupportedArchitectureError(`${source}: tensor ${name} is not part of a ${config.kind} model of this config`)
    if (t.shape.length !== want.length || t.shape.some((d, i) => d !== want[i])) {
      throw new CorruptCheckpointError(`${source}: tensor ${name} has shape [${t.shape.join(', ')}], the config needs [${want.join(', ')}]`)
    }
    const bytes = tensorByteLength(t.dtype, t.shape, `${source}: tensor ${name}`)
    if (t.data.byteLength !== bytes) {
      throw new CorruptCheckpointError(`${source}: tensor ${name} (${t.dtype} [${t.shape.join(', ')}]) needs ${bytes} bytes, has ${t.data.byteLength}`)
    }
  }
}

