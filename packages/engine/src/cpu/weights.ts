import type { ModelConfig } from '@shardmesh/model'
import { cpuMatrix, vectorF32 } from './matrix.ts'
import type { WasmArena } from './wasm/arena.ts'
import type { CpuMatrix, CpuQuant } from './matrix.ts'
import type { TensorSource } from '../types.ts'
import { layerParts } from '../stage-shape.ts'
import { requireTensor } from '../stage-tensors.ts'

/** Unit 2l: the attention half of a block. */
export interface AttentionWeights {
  norm: Float32Array // (dim)
  wq: CpuMatrix // (nHeads*headDim, dim)
  wk: CpuMatrix // (nKvHeads*headDim, dim)
  wv: CpuMatrix // (nKvHeads*headDim, dim)
  wo: CpuMatrix // (dim, nHeads*headDim)
}

/** Unit 2l + 1: the feed-forward half of a block. */
export interface FfnWeights {
  norm: Float32Array // (dim)
  w1: CpuMatrix // (hidden, dim)
  w2: CpuMatrix // (dim, hidden)
  w3: CpuMatrix // (hidden, dim)
}

/** One layer of a stage: the halves the stage runs (both, except at a cut inside the block). */
export interface LayerWeights {
  /** The model's index of this layer. */
  layer: number
  attention?: AttentionWeights
  ffn?: FfnWeights
}

export interface StageWeights {
  embedding?: CpuMatrix // (vocab, dim)
  layers: LayerWeights[]
  norm?: Float32Array // (dim)
  output?: CpuMatrix // (vocab, dim); the embedding table when tied
}

/**
 * Gather and check the weights of units `[u0, u1)` plus embedding and head as asked, copied
 * into `arena` (quantized on the way in with `quant`). Tensors of halves the stage does not
 * run are never read.
 */
export function stageWeights (config: ModelConfig, tensors: TensorSource, units: [number, number], embed: boolean, head: boolean, arena: WasmArena, quant?: CpuQuant): StageWeights {
  const { dim, hiddenDim, nHeads, nKvHeads, headDim, vocabSize } = config
  const qDim = nHeads * headDim
  const kvDim = nKvHeads * headDim
  const matrix = (name: string, shape: number[]): CpuMatrix => cpuMatrix(requireTensor(tensors, name, shape), arena, quant)
  const vector = (name: string): Float32Array => vectorF32(requireTensor(tensors, name, [dim]))
  const layers: LayerWeights[] = layerParts(units).map(({ layer, attention, ffn }) => {
    const p = `layers.${layer}.`
    const w: LayerWeights = { layer }
    if (attention) {
      w.attention = {
        norm: vector(p + 'attention_norm'),
        wq: matrix(p + 'wq', [qDim, dim]),
        wk: matrix(p + 'wk', [kvDim, dim]),
        wv: matrix(p + 'wv', [kvDim, dim]),
        wo: matrix(p + 'wo', [dim, qDim])
      }
    }
    if (ffn) {
      w.ffn = {
        norm: vector(p + 'ffn_norm'),
        w1: matrix(p + 'w1', [hiddenDim, dim]),
        w2: matrix(p + 'w2', [dim, hiddenDim]),
        w3: matrix(p + 'w3', [hiddenDim, dim])
      }
    }
    return w
  })
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
