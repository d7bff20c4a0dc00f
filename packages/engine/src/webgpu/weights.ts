import { toFloat32 } from '@shardmesh/model'
import type { ModelConfig } from '@shardmesh/model'
import type { TensorSource } from '../types.ts'
import type { GpuContext } from './context.ts'
import { destroyMatrix, uploadMatrix } from './matrix.ts'
import type { GpuMatrix } from './matrix.ts'
import { requireTensor } from '../stage-tensors.ts'

export interface GpuLayerWeights {
  attentionNorm: GPUBuffer // (dim) f32
  wq: GpuMatrix // (nHeads*headDim, dim)
  wk: GpuMatrix // (nKvHeads*headDim, dim)
  wv: GpuMatrix // (nKvHeads*headDim, dim)
  wo: GpuMatrix // (dim, nHeads*headDim)
  ffnNorm: GPUBuffer // (dim) f32
  w1: GpuMatrix // (hidden, dim)
  w2: GpuMatrix // (dim, hidden)
  w3: GpuMatrix // (hidden, dim)
}

/** A stage's weights on the GPU, uploaded once when the stage is created. */
export interface GpuStageWeights {
  embedding?: GpuMatrix // (vocab, dim)
  layers: GpuLayerWeights[]
  norm?: GPUBuffer // (dim) f32
  output?: GpuMatrix // (vocab, dim); the embedding table when tied and embedded here
  bytes: number
}

/** Check and upload the weights of layers [l0, l1) plus embedding and head as asked. */
export function uploadStageWeights (ctx: GpuContext, config: ModelConfig, tensors: TensorSource, l0: number, l1: number, embed: boolean, head: boolean): GpuStageWeights {
  const { dim, hiddenDim, nHeads, nKvHeads, headDim, vocabSize } = config
  const qDim = nHeads * headDim
  const kvDim = nKvHeads * headDim
  // check every shape before the first upload
  const want: Array<[string, number[]]> = []
  for (let l = l0; l < l1; l++) {
    const p = `layers.${l}.`
    want.push([p + 'attention_norm', [dim]], [p + 'wq', [qDim, dim]], [p + 'wk', [kvDim, dim]], [p + 'wv', [kvDim, dim]],
      [p + 'wo', [dim, qDim]], [p + 'ffn_norm', [dim]], [p + 'w1', [hiddenDim, dim]], [p + 'w2', [dim, hiddenDim]], [p + 'w3', [hiddenDim, dim]])
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
    const values = toFloat32(checked.get(name)!)
    const buffer = ctx.storage(values.byteLength, name)
    ctx.device.queue.writeBuffer(buffer, 0, values.buffer, values.byteOffset, values.byteLength)
    bytes += buffer.size
    return buffer
  }
  const layers: GpuLayerWeights[] = []
  for (let l = l0; l < l1; l++) {
    const p = `layers.${l}.`
    layers.push({
      attentionNorm: vector(p + 'attention_norm'),
      wq: matrix(p + 'wq'),
      wk: matrix(p + 'wk'),
      wv: matrix(p + 'wv'),
      wo: matrix(p + 'wo'),
      ffnNorm: vector(p + 'ffn_norm'),
      w1: matrix(p + 'w1'),
      w2: matrix(p + 'w2'),
      w3: matrix(p + 'w3')
    })
  }
  const weights: GpuStageWeights = { layers, bytes: 0 }
  if (embed) weights.embedding = matrix('tok_embeddings')
  if (head) {
    weights.norm = vector('norm')
    weights.output = config.tiedEmbeddings ? (weights.embedding ?? matrix('tok_embeddings')) : matrix('output')
  }
  weights.bytes = bytes
  return weights
}

export function destroyStageWeights (w: GpuStageWeights): void {
  for (const l of w.layers) {
    l.attentionNorm.destroy()
    l.ffnNorm.destroy()
    for (const m of [l.wq, l.wk, l.wv, l.wo, l.w1, l.w2, l.w3]) destroyMatrix(m)
  }
  if (w.embedding !== undefined) destroyMatrix(w.embedding)
  if (w.output !== undefined && w.output !== w.embedding) destroyMatrix(w.output)
  w.norm?.destroy()
}
