import type { ModelConfig } from '@shardmesh/model'
import { requireTensor } from '../stage-tensors.ts'
import type { TensorSource } from '../types.ts'
import { addInPlace, attention, rmsnorm } from './kernels.ts'
import { cpuMatrix, vectorF32 } from './matrix.ts'
import type { CpuMatrix, CpuQuant } from './matrix.ts'
import { matmul } from './matmul.ts'
import type { WasmArena } from './wasm/arena.ts'

/** Cross-attention of one decoder layer, run after its self-attention (part of unit 2l). */
export interface CrossWeights {
  norm: Float32Array // (dim)
  wq: CpuMatrix // (nHeads*headDim, dim)
  wk: CpuMatrix // (nKvHeads*headDim, memoryDim)
  wv: CpuMatrix // (nKvHeads*headDim, memoryDim)
  wo: CpuMatrix // (dim, nHeads*headDim)
}

/** One session's memory as each cross-attention layer of the stage sees it: keys and values `(n, kvDim)` per layer. */
export interface CrossMemory {
  n: number
  keys: Float32Array[]
  values: Float32Array[]
}

/** The cross-attention weights of layers `[l0, l1)`, under `layers.l.cross_{norm,q,k,v,o}`. */
export function crossWeights (config: ModelConfig, memoryDim: number, tensors: TensorSource, layers: [number, number], arena: WasmArena, quant?: CpuQuant): CrossWeights[] {
  const { dim, nHeads, nKvHeads, headDim } = config
  const qDim = nHeads * headDim
  const kvDim = nKvHeads * headDim
  const matrix = (name: string, shape: number[]): CpuMatrix => cpuMatrix(requireTensor(tensors, name, shape), arena, quant)
  const out: CrossWeights[] = []
  for (let l = layers[0]; l < layers[1]; l++) {
    const p = `layers.${l}.cross_`
    out.push({
      norm: vectorF32(requireTensor(tensors, p + 'norm', [dim])),
      wq: matrix(p + 'q', [qDim, dim]),
      wk: matrix(p + 'k', [kvDim, memoryDim]),
      wv: matrix(p + 'v', [kvDim, memoryDim]),
      wo: matrix(p + 'o', [dim, qDim])
    })
  }
  return out
}

/** Keys and values of every layer over the memory `(n, memoryDim)`: computed once per session. */
export function crossMemory (weights: CrossWeights[], memory: Float32Array, n: number): CrossMemory {
  const keys: Float32Array[] = []
  const values: Float32Array[] = []
  for (const w of weights) {
    const k = new Float32Array(n * w.wk.rows) // (n, kvDim)
    const v = new Float32Array(n * w.wv.rows)
    matmul(w.wk, memory, n, k)
    matmul(w.wv, memory, n, v)
    keys.push(k)
    values.push(v)
  }
  return { n, keys, values }
}

/** Scratch the cross-attention borrows from its stage: `(rows, dim)`, `(rows, qDim)` and scores. */
export interface CrossScratch {
  xb: Float32Array
  xb2: Float32Array
  q: Float32Array
  att: Float32Array
  scores: Float32Array
}

/**
 * x += wo · attention(q = wq · norm(x), K, V of the memory) for all rows of a batch: each
 * session's rows attend to every position of its own memory (no mask, no RoPE), with the
 * same attention kernel and summation order as self-attention. `c` is the layer's index
 * among the stage's cross-attention layers.
 */
export function crossAttention (config: ModelConfig, w: CrossWeights, c: number, steps: Array<{ n: number, row: number, memory: CrossMemory }>, x: Float32Array, rows: number, scratch: CrossScratch): void {
  const { dim, nHeads, nKvHeads, headDim } = config
  const qDim = nHeads * headDim
  const { xb, xb2, q, att } = scratch
  rmsnorm(xb, x, w.norm, rows, dim, config.normEps)
  matmul(w.wq, xb, rows, q) // (rows, qDim)
  for (const { n, row, memory } of steps) {
    const scores = scratch.scores.length >= nHeads * memory.n ? scratch.scores : new Float32Array(nHeads * memory.n)
    const qs = q.subarray(row * qDim, (row + n) * qDim)
    attention(att.subarray(row * qDim, (row + n) * qDim), qs, memory.keys[c], memory.values[c], n, 0, { nHeads, nKvHeads, headDim }, scores, memory.n) // (n, qDim)
  }
  matmul(w.wo, att, rows, xb2) // (rows, dim)
  addInPlace(x, xb2, rows * dim)
}
