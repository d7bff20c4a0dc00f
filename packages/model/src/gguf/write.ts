import { convertTensor, encodeValues } from '../convert.ts'
import type { MatrixDType } from '../convert.ts'
import { CorruptCheckpointError } from '../errors.ts'
import { toFloat32 } from '../quant.ts'
import { halfToInterleavedRows } from '../rope-permute.ts'
import type { Checkpoint, ModelConfig, Tensor, TokenizerSpec } from '../types.ts'
import { encodeGguf, type GgufEntry } from './encode.ts'
import { toGgufName } from './names.ts'
import { checkLlamaTensors, llamaShapes } from './shapes.ts'

export interface WriteGgufOptions {
  /**
   * Storage type for the 2-D weight matrices (embeddings, wq..w3, output). A matrix whose rows
   * are not whole 32-value blocks keeps its own dtype under Q8_0/Q4_0. Norms are always F32.
   * @default each matrix keeps its dtype
   */
  matrixType?: MatrixDType
}

function configEntries (c: ModelConfig): GgufEntry[] {
  return [
    { key: 'general.architecture', type: 'string', value: 'llama' },
    { key: 'general.name', type: 'string', value: c.name },
    { key: 'llama.vocab_size', type: 'u32', value: c.vocabSize },
    { key: 'llama.context_length', type: 'u32', value: c.contextLength },
    { key: 'llama.embedding_length', type: 'u32', value: c.dim },
    { key: 'llama.feed_forward_length', type: 'u32', value: c.hiddenDim },
    { key: 'llama.block_count', type: 'u32', value: c.nLayers },
    { key: 'llama.attention.head_count', type: 'u32', value: c.nHeads },
    { key: 'llama.attention.head_count_kv', type: 'u32', value: c.nKvHeads },
    { key: 'llama.rope.dimension_count', type: 'u32', value: c.headDim },
    { key: 'llama.rope.freq_base', type: 'f32', value: c.ropeTheta },
    { key: 'llama.attention.layer_norm_rms_epsilon', type: 'f32', value: c.normEps },
    { key: 'tokenizer.ggml.bos_token_id', type: 'u32', value: c.bosId },
    { key: 'tokenizer.ggml.eos_token_id', type: 'u32', value: c.eosId }
  ]
}

/** A piece's bytes with each space (0x20) spelled as SentencePiece's '▁' (E2 96 81). */
function sentencePiece (piece: Uint8Array): Uint8Array {
  const out: number[] = []
  for (const b of piece) {
    if (b === 0x20) out.push(0xe2, 0x96, 0x81)
    else out.push(b)
  }
  return new Uint8Array(out)
}

function tokenizerEntries (t: TokenizerSpec): GgufEntry[] {
  const entries: GgufEntry[] = [
    { key: 'tokenizer.ggml.model', type: 'string', value: 'llama' },
    { key: 'tokenizer.ggml.tokens', type: 'string[]', value: t.pieces.map(sentencePiece) },
    { key: 'tokenizer.ggml.scores', type: 'f32[]', value: t.scores }
  ]
  if (t.types !== undefined) entries.push({ key: 'tokenizer.ggml.token_type', type: 'i32[]', value: t.types })
  entries.push(
    { key: 'tokenizer.ggml.unknown_token_id', type: 'u32', value: t.unkId },
    { key: 'tokenizer.ggml.add_space_prefix', type: 'bool', value: t.addDummyPrefix }
  )
  return entries
}

/** One tensor as stored in the file: norms as F32, matrices in `matrixType`, Q/K rows interleaved if needed. */
function fileTensor (t: Tensor, config: ModelConfig, matrixType: MatrixDType | undefined): Tensor {
  const name = toGgufName(t.name)
  if (t.shape.length === 1) {
    return { name, dtype: 'F32', shape: t.shape, data: t.dtype === 'F32' ? t.data : encodeValues(toFloat32(t), 'F32') }
  }
  if (config.ropeLayout === 'half' && /\.w[qk]$/.test(t.name)) {
    t = halfToInterleavedRows(t, t.name.endsWith('wq') ? config.nHeads : config.nKvHeads)
  }
  return { ...(matrixType === undefined ? t : convertTensor(t, matrixType)), name }
}

/**
 * Serialize a Llama checkpoint as GGUF v3 (llama.* and tokenizer metadata, tensors aligned to 32).
 * A `half` RoPE layout checkpoint has its wq/wk rows permuted so the file reads as `interleaved`.
 */
export function writeGguf (ckpt: Checkpoint, opts: WriteGgufOptions = {}): Uint8Array {
  const { config, tensors } = ckpt
  checkLlamaTensors(tensors, config, ckpt.source)
  if (config.headDim * config.nHeads !== config.dim || config.headDim % 2 !== 0) {
    throw new CorruptCheckpointError(`${ckpt.source}: GGUF llama needs an even headDim = dim / nHeads, got ${config.headDim} (dim ${config.dim}, ${config.nHeads} heads)`)
  }
  const entries = configEntries(config)
  if (ckpt.tokenizer !== undefined) entries.push(...tokenizerEntries(ckpt.tokenizer))
  const fileTensors = [...llamaShapes(config).keys()].map((name) => fileTensor(tensors.get(name) as Tensor, config, opts.matrixType))
  return encodeGguf(entries, fileTensors)
}
