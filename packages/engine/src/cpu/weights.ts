import type { ModelConfig } from '@shardmesh/model'
import { cpuMatrix, vectorF32 } from './matrix.ts'
import type { WasmArena } from './wasm/arena.ts'
import type { CpuMatrix, CpuQuant } from './matrix.ts'
import type { TensorSource } from '../types.ts'
import { requireTensor } from '../stage-tensors.ts'

export interface LayerWeights {
  attentionNorm: Float32Array // (dim)
  wq: CpuMatrix // (nHeads*headDim, dim)
  wk: CpuMatrix // (nKvHeads*headDim, dim)
  wv: CpuMatrix // (nKvHeads*headDim, dim)
  wo: CpuMatrix // (dim, nHeads*headDim)
  ffnNorm: Float32Array // (dim)
  w1: CpuMatrix // (hidden, dim)
  w2: CpuMatrix // (dim, hidden)
  w3: CpuMatrix // (hidden, dim)
}

export interface StageWeights {
  embedding?: CpuMatrix // (vocab, dim)
  layers: LayerWeights[]
  norm?: Float32Array // (dim)
  output?: CpuMatrix // (vocab, dim); the embedding table when tied
}

/** Gather and check the weights of layers [l0, l1) plus embedding and head as asked, copied into `arena` (quantized on the way in with `quant`). */
export function stageWeights (config: ModelConfig, tensors: TensorSource, l0: number, l1: number, embed: boolean, head: boolean, arena: WasmArena, quant?: CpuQuant): StageWeights {
  const { dim, hiddenDim, nHeads, nKvHeads, headDim, vocabSize } = config
  const qDim = nHeads * headDim
  const kvDim = nKvHeads * headDim
  const matrix = (name: string, shape: number[]): CpuMatrix => cpuMatrix(requireTensor(tensors, name, shape), arena, quant)
  const vector = (name: string): Float32Array => vectorF32(requireTensor(tensors, name, [dim]))
  const layers: LayerWeights[] = []
  for (let l = l0; l < l1; l++) {
    const p = `layers.${l}.`
    layers.push({
      attentionNorm: vector(p + 'attention_norm'),
      wq: matrix(p + 'wq', [qDim, dim]),
      wk: matrix(p + 'wk', [kvDim, dim]),
      wv: matrix(p + 'wv', [kvDim, dim]),
      wo: matrix(p + 'wo', [dim, qDim]),
      ffnNorm: vector(p + 'ffn_norm'),
      w1: matrix(p + 'w1', [hiddenDim, dim]),
      w2: matrix(p + 'w2', [dim, hiddenDim]),
      w3: matrix(p + 'w3', [hiddenDim, dim])
    })
  }
  const weights: StageWeights = { layers }
  if (embed) weights.embedding = matrix('tok_embeddings', [vocabSize, dim])
  if (head) {
    weights.norm = vector('norm')
    weights.output = config.tiedEmbeddings
      ? (weights.embedding ?? matrix('tok_embeddings', [vocabSize, dim]))
      : matrix('output', [vocabSize, dim])
  }
  return weights
}
