/** Storage types a tensor can have on disk and in memory. */
export type DType = 'F32' | 'F16' | 'BF16' | 'Q8_0' | 'Q4_0'

/**
 * A tensor in its stored dtype. `shape` is row-major, outermost first: a matrix applied as
 * `out[i] = sum_j W[i][j] * x[j]` has shape `[out, in]`. Quantized dtypes are blocked along
 * the innermost dimension (32 values per block).
 */
export interface Tensor {
  name: string
  dtype: DType
  shape: number[]
  /** Raw little-endian bytes in `dtype`; may be a view into a larger buffer. */
  data: Uint8Array
}

/**
 * How RoPE pairs the elements of a head:
 * - `interleaved`: adjacent pairs (2i, 2i+1) — llama2.c and GGUF (Q/K rows permuted by the converter)
 * - `half`: pairs (i, i + headDim/2) — Hugging Face `rotate_half`
 */
export type RopeLayout = 'interleaved' | 'half'

/** One normalized description of a Llama-family model, whatever file it came from. */
export interface ModelConfig {
  architecture: 'llama'
  name: string
  dim: number
  hiddenDim: number
  nLayers: number
  nHeads: number
  nKvHeads: number
  headDim: number
  vocabSize: number
  /** Longest sequence (positions) the model may be run on. */
  contextLength: number
  ropeTheta: number
  ropeLayout: RopeLayout
  normEps: number
  /** The LM head is the token embedding table (no `output` tensor). */
  tiedEmbeddings: boolean
  bosId: number
  eosId: number
  /** Sampled tokens that end generation (EOS, and BOS: a sampled BOS starts a new document). */
  stopIds: number[]
}

/** Tokenizer data as stored in a checkpoint; `createTokenizer` turns it into encode/decode. */
export interface TokenizerSpec {
  /** Raw bytes of each piece, id order. SentencePiece's `▁` is already replaced by a space. */
  pieces: Uint8Array[]
  /** Merge priority per piece: higher merges first. */
  scores: Float32Array
  /** GGUF token types (1 normal, 2 unknown, 3 control, 6 byte), when known. */
  types?: Int32Array
  bosId: number
  eosId: number
  unkId: number
  /** Prepend the dummy-prefix space (SentencePiece `add_dummy_prefix`) to non-empty text. */
  addDummyPrefix: boolean
}

export type CheckpointFormat = 'gguf' | 'llama2c' | 'safetensors'

/**
 * A loaded checkpoint with tensors under normalized names:
 * `tok_embeddings` [vocab, dim], `norm` [dim], `output` [vocab, dim] (absent when tied),
 * and per layer i: `layers.i.attention_norm` [dim], `layers.i.wq` [nHeads*headDim, dim],
 * `layers.i.wk` / `layers.i.wv` [nKvHeads*headDim, dim], `layers.i.wo` [dim, nHeads*headDim],
 * `layers.i.ffn_norm` [dim], `layers.i.w1` (gate) / `layers.i.w3` (up) [hidden, dim],
 * `layers.i.w2` (down) [dim, hidden].
 */
export interface Checkpoint {
  format: CheckpointFormat
  /** Where it was loaded from (path or URL), for error messages. */
  source: string
  config: ModelConfig
  tensors: Map<string, Tensor>
  tokenizer?: TokenizerSpec
}
