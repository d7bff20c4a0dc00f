import { toFloat32 } from '@shardmesh/model'
import type { ModelConfig, Tensor } from '@shardmesh/model'
import type { TensorSource } from '../types.ts'
import type { GpuContext } from './context.ts'
import { destroyMatrix, uploadMatrix } from './matrix.ts'
import type { GpuMatrix } from './matrix.ts'
import { layerParts } from '../stage-shape.ts'
import { requireTensor } from '../stage-tensors.ts'

/** Unit 2l: the attention half of a block. */
export interface GpuAttentionWeights {
  norm: GPUBuffer // (dim) f32
  wq: GpuMatrix // (nHeads*headDim, dim)
  wk: GpuMatrix // (nKvHeads*headDim, dim)
  wv: GpuMatrix // (nKvHeads*headDim, dim)
  wo: GpuMatrix // (dim, nHeads*headDim)
}

/** Unit 2l + 1: the feed-forward half of a block. */
export interface GpuFfnWeights {
  norm: GPUBuffer // (dim) f32
  w1: GpuMatrix // (hidden, dim)
  w2: GpuMatrix // (dim, hidden)
  w3: GpuMatrix // (hidden, dim)
}

/** One layer of a stage: the halves the stage runs (both, except at a cut inside the block). */
export interface GpuLayerWeights {
  /** The model's index of this layer. */
  layer: number
  attention?: GpuAttentionWeights
  ffn?: GpuFfnWeights
}

/** A stage's weights on the GPU, uploaded once when the stage is created. */
export interface GpuStageWeights {
  embedding?: GpuMatrix // (vocab, dim)
  layers: GpuLayerWeights[]
  norm?: GPUBuffer // (dim) f32
  output?: GpuMatrix // (vocab, dim); the embedding table when tied and embedded here
  bytes: number
}

/** Check and upload the weights of units `[u0, u1)` plus embedding and head as asked; tensors of halves not run are never read. */
export function uploadStageWeights (ctx: GpuContext, config: ModelConfig, tensors: TensorSource, units: [number, number], embed: boolean, head: boolean): GpuStageWeights {
  const { dim, hiddenDim, nHeads, nKvHeads, headDim, vocabSize } = config
  const qDim = nHeads * headDim
  const kvDim = nKvHeads * headDim
  // check every shape before the first upload
  const parts = layerParts(units)
  const want: Array<[string, number[]]> = []
  for (const { layer, attention, ffn } of parts) {
    const p = `layers.${layer}.`
    if (attention) want.push([p + 'attention_norm', [dim]], [p + 'wq', [qDim, dim]], [p + 'wk', [kvDim, dim]], [p + 'wv', [kvDim, dim]], [p + 'wo', [dim, qDim]])
    if (ffn) want.push([p + 'ffn_norm', [dim]], [p + 'w1', [hiddenDim, dim]], [p + 'w2', [dim, hiddenDim]], [p + 'w3', [hiddenDim, dim]])
  }
  if (embed || (head && config.tiedEmbeddings)) want.push(['tok_embeddings', [vocabSize, dim]])
  if (head) want.push(['norm', [dim]])
  if (head && !config.tiedEmbeddings) want.push(['output', [vocabSize, dim]])
  const checked = new Map(want.map(([name, shape]) => [name, requireTensor(tensors, name, shape)]))

  let bytes = 0
  const matrix = (name: string): GpuMatrix => {
    const m = uploadMatrix(ctx, checked.get(name)!)
    bytes += m.bytes
    return m
  }
  const vector = (name: string): GPUBuffer => {
    const buffer = uploadVector(ctx, checked.get(name)!)
    bytes += buffer.size
    return buffer
  }
  const layers: GpuLayerWeights[] = parts.map(({ layer, attention, ffn }) => {
    const p = `layers.${layer}.`
    const w: GpuLayerWeights = { layer }
    if (attention) w.attention = { norm: vector(p + 'attention_norm'), wq: matrix(p + 'wq'), wk: matrix(p + 'wk'), wv: matrix(p + 'wv'), wo: matrix(p + 'wo') }
    if (ffn) w.ffn = { norm: vector(p + 'ffn_norm'), w1: matrix(p + 'w1'), w2: matrix(p + 'w2'), w3: matrix(p + 'w3') }
    return w
  })
  const weights: GpuStageWeights = { layers, bytes: 0 }
  if (embed) weights.embedding = matrix('tok_embeddings')
  if (head) {
    weights.norm = vector('norm')
    weights.output = config.tiedEmbeddings ? (weights.embedding ?? matrix('tok_embeddings')) : matrix('output')
  }
  weights.bytes = bytes
  return weights
}

/** A norm weight `(dim)` as f32 on the GPU. */
export function uploadVector (ctx: GpuContext, t: Tensor): GPUBuffer {
  const values = toFloat32(t)
  const buffer = ctx.storage(values.byteLength, t.name)
  ctx.device.queue.writeBuffer(buffer, 0, values.buffer, values.byteOffset, values.byteLength)
  return buffer
}

export function destroyStageWeights (w: GpuStageWeights): void {
  for (const { attention: a, ffn: f } of w.layers) {
    if (a !== undefined) {
      a.norm.destroy()
      for (const m of [a.wq, a.wk, a.wv, a.wo]) destroyMatrix(m)
    }
    if (f !== undefined) {
      f.norm.destroy()
      for (const m of [f.w1, f.w2, f.w3]) destroyMatrix(m)
    }
  }
  if (w.embedding !== undefined) destroyMatrix(w.embedding)
  if (w.output !== undefined && w.output !== w.embedding) destroyMatrix(w.output)
  w.norm?.destroy()
}
