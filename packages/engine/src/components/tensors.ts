import { componentTensorShapes } from '@shardmesh/model'
import type { ComponentModelConfig, ComponentName, Tensor } from '@shardmesh/model'
import { layerParts } from '../stage-shape.ts'
import type { StageShape } from '../stage-shape.ts'
import { requireTensor } from '../stage-tensors.ts'
import type { TensorSource } from '../types.ts'

const FFN = new Set(['ffn_norm', 'w1', 'w2', 'w3'])

/**
 * The tensors a stage of `component` over `shape` reads, by component name with their
 * shapes: the embedding if it embeds, each layer's attention half (self- and, in a decoder,
 * cross-attention) and feed-forward half as its units say, the head if it ends the component.
 */
export function stageComponentTensors (model: ComponentModelConfig, component: ComponentName, shape: Pick<StageShape, 'units' | 'embed' | 'head'>): Map<string, number[]> {
  const parts = new Map(layerParts(shape.units).map(p => [p.layer, p]))
  const out = new Map<string, number[]>()
  for (const [name, { shape: dims, part }] of componentTensorShapes(model, component)) {
    let wanted: boolean
    if (part === 'embedding') wanted = shape.embed
    else if (part === 'head') wanted = shape.head
    else {
      const p = parts.get(part)
      const half = name.slice(name.lastIndexOf('.') + 1)
      wanted = p !== undefined && (FFN.has(half) ? p.ffn : p.attention)
    }
    if (wanted) out.set(name, dims)
  }
  return out
}

/** Checks that every tensor the stage reads is there with its shape (MissingFieldError, StageConfigError naming the component tensor). */
export function checkStageTensors (model: ComponentModelConfig, component: ComponentName, shape: Pick<StageShape, 'units' | 'embed' | 'head'>, tensors: TensorSource): void {
  for (const [name, dims] of stageComponentTensors(model, component, shape)) requireTensor(tensors, name, dims)
}

/**
 * A decoder's tensors under the names a Llama stage reads: `tok_embeddings` → `decoder.embed`,
 * `norm` → `decoder.final_norm`, `output` → `decoder.head`, `layers.l.attention_norm` →
 * `decoder.layers.l.attn_norm`, and every other `layers.l.x` (cross_* included) →
 * `decoder.layers.l.x`. The tensors keep their component names.
 */
export function decoderTensorSource (tensors: TensorSource): TensorSource {
  return {
    get (name: string): Tensor | undefined {
      if (name === 'tok_embeddings') return tensors.get('decoder.embed')
      if (name === 'norm') return tensors.get('decoder.final_norm')
      if (name === 'output') return tensors.get('decoder.head')
      const m = /^layers\.(\d+)\.(.+)$/.exec(name)
      if (m === null) return undefined
      return tensors.get(`decoder.layers.${m[1]}.${m[2] === 'attention_norm' ? 'attn_norm' : m[2]}`)
    }
  }
}
