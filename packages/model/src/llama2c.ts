import { CorruptCheckpointError, TruncatedCheckpointError } from './errors.ts'
import type { Checkpoint, ModelConfig, Tensor } from './types.ts'
import { baseName } from './util.ts'

const HEADER_BYTES = 28
/** llama2.c's versioned exports (v1, v2) start with this uint32 (bytes "24ka"); the legacy v0 has no magic. */
const AK42_MAGIC = 0x616b3432

/**
 * Load a llama2.c legacy (version 0) checkpoint: a header of 7 int32s (dim, hidden_dim,
 * n_layers, n_heads, n_kv_heads, vocab_size, seq_len) then float32 arrays without padding,
 * layer-stacked: embeddings, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3, rms_final,
 * freq_cis real/imag (skipped), and `wcls` only when vocab_size is negative (unshared classifier).
 * Tensors are zero-copy views of `bytes`.
 */
export function readLlama2c (bytes: Uint8Array, source: string): Checkpoint {
  if (bytes.byteLength < HEADER_BYTES) {
    throw new TruncatedCheckpointError(`${source}: llama2.c header needs ${HEADER_BYTES} bytes, file has ${bytes.byteLength}`)
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, HEADER_BYTES)
  if (view.getUint32(0, true) === AK42_MAGIC) {
    throw new CorruptCheckpointError(`${source}: llama2.c export version ${view.getInt32(4, true)} is not supported; only the legacy version 0 is`)
  }
  const [dim, hiddenDim, nLayers, nHeads, nKvHeads, signedVocab, seqLen] = Array.from({ length: 7 }, (_, i) => view.getInt32(4 * i, true))
  const vocabSize = Math.abs(signedVocab)
  const header = { dim, hidden_dim: hiddenDim, n_layers: nLayers, n_heads: nHeads, n_kv_heads: nKvHeads, vocab_size: vocabSize, seq_len: seqLen }
  for (const [key, v] of Object.entries(header)) {
    if (!(v > 0)) throw new CorruptCheckpointError(`${source}: llama2.c header ${key} must be positive, got ${v}`)
  }
  if (dim % nHeads !== 0) throw new CorruptCheckpointError(`${source}: dim ${dim} is not a multiple of n_heads ${nHeads}`)
  if (nHeads % nKvHeads !== 0) throw new CorruptCheckpointError(`${source}: n_heads ${nHeads} is not a multiple of n_kv_heads ${nKvHeads}`)
  const headDim = dim / nHeads
  if (headDim % 2 !== 0) throw new CorruptCheckpointError(`${source}: head size ${headDim} is odd (RoPE rotates pairs)`)
  const kvDim = nKvHeads * headDim
  const shared = signedVocab > 0

  // (name, per-layer shape or global shape, stacked over layers?) in file order
  const layout: Array<[string, number[], boolean]> = [
    ['tok_embeddings', [vocabSize, dim], false],
    ['attention_norm', [dim], true],
    ['wq', [dim, dim], true],
    ['wk', [kvDim, dim], true],
    ['wv', [kvDim, dim], true],
    ['wo', [dim, dim], true],
    ['ffn_norm', [dim], true],
    ['w1', [hiddenDim, dim], true],
    ['w2', [dim, hiddenDim], true],
    ['w3', [hiddenDim, dim], true],
    ['norm', [dim], false],
    ['freq_cis', [2, seqLen, headDim / 2], false], // real then imag, skipped
    ...(shared ? [] : [['output', [vocabSize, dim], false] as [string, number[], boolean]])
  ]
  const floats = layout.reduce((n, [, shape, stacked]) => n + shape.reduce((a, b) => a * b, 1) * (stacked ? nLayers : 1), 0)
  const expected = HEADER_BYTES + 4 * floats
  if (bytes.byteLength < expected) {
    throw new TruncatedCheckpointError(`${source}: llama2.c checkpoint should be ${expected} bytes for its header, file has ${bytes.byteLength}`)
  }
  if (bytes.byteLength > expected) {
    throw new CorruptCheckpointError(`${source}: llama2.c checkpoint should be ${expected} bytes for its header, file has ${bytes.byteLength} (trailing data)`)
  }

  const tensors = new Map<string, Tensor>()
  let offset = HEADER_BYTES
  const take = (name: string, shape: number[]): void => {
    const n = 4 * shape.reduce((a, b) => a * b, 1)
    if (name !== 'freq_cis') tensors.set(name, { name, dtype: 'F32', shape, data: bytes.subarray(offset, offset + n) })
    offset += n
  }
  for (const [name, shape, stacked] of layout) {
    if (!stacked) take(name, shape)
    else for (let l = 0; l < nLayers; l++) take(`layers.${l}.${name}`, shape)
  }

  const config: ModelConfig = {
    architecture: 'llama',
    name: baseName(source),
    dim,
    hiddenDim,
    nLayers,
    nHeads,
    nKvHeads,
    headDim,
    vocabSize,
    contextLength: seqLen,
    ropeTheta: 10000,
    ropeLayout: 'interleaved',
    normEps: 1e-5,
    tiedEmbeddings: shared,
    bosId: 1,
    eosId: 2,
    stopIds: [2, 1]
  }
  return { format: 'llama2c', source, config, tensors }
}
