import { CorruptCheckpointError, UnsupportedArchitectureError } from '../errors.ts'
import type { Checkpoint, ModelConfig, Tensor, TokenizerSpec } from '../types.ts'
import { Metadata } from './metadata.ts'
import { fromGgufName } from './names.ts'
import { parseGguf } from './parse.ts'
import { checkLlamaTensors } from './shapes.ts'
import { baseName } from '../util.ts'

function positive (values: Record<string, number>, source: string): void {
  for (const [key, v] of Object.entries(values)) {
    if (!(v > 0)) throw new CorruptCheckpointError(`${source}: metadata ${key} must be positive, got ${v}`)
  }
}

/** The normalized config from `llama.*` and `tokenizer.ggml.*` keys (vocab from the token list or the embeddings). */
function llamaConfig (meta: Metadata, tensors: Map<string, Tensor>, source: string): ModelConfig {
  const dim = meta.int('llama.embedding_length')
  const hiddenDim = meta.int('llama.feed_forward_length')
  const nLayers = meta.int('llama.block_count')
  const nHeads = meta.int('llama.attention.head_count')
  const nKvHeads = meta.int('llama.attention.head_count_kv', nHeads)
  const contextLength = meta.int('llama.context_length')
  const ropeTheta = meta.float('llama.rope.freq_base', 10000)
  const normEps = meta.float('llama.attention.layer_norm_rms_epsilon')
  positive({
    'llama.embedding_length': dim,
    'llama.feed_forward_length': hiddenDim,
    'llama.block_count': nLayers,
    'llama.attention.head_count': nHeads,
    'llama.attention.head_count_kv': nKvHeads,
    'llama.context_length': contextLength,
    'llama.rope.freq_base': ropeTheta,
    'llama.attention.layer_norm_rms_epsilon': normEps
  }, source)
  if (dim % nHeads !== 0) throw new CorruptCheckpointError(`${source}: embedding_length ${dim} is not a multiple of head_count ${nHeads}`)
  if (nHeads % nKvHeads !== 0) throw new CorruptCheckpointError(`${source}: head_count ${nHeads} is not a multiple of head_count_kv ${nKvHeads}`)
  const headDim = dim / nHeads
  const ropeDims = meta.int('llama.rope.dimension_count', headDim)
  if (ropeDims !== headDim) {
    throw new CorruptCheckpointError(`${source}: llama.rope.dimension_count ${ropeDims} differs from the head size ${headDim}`)
  }
  const scaling = meta.string('llama.rope.scaling.type', 'none')
  if (scaling !== 'none') throw new UnsupportedArchitectureError(`${source}: RoPE scaling '${scaling}' is not supported`)

  const vocabSize = meta.has('tokenizer.ggml.tokens')
    ? meta.strings('tokenizer.ggml.tokens').length
    : meta.int('llama.vocab_size', tensors.get('tok_embeddings')?.shape[0] ?? 0)
  const bosId = meta.int('tokenizer.ggml.bos_token_id', 1)
  const eosId = meta.int('tokenizer.ggml.eos_token_id', 2)
  for (const [key, id] of [['bos_token_id', bosId], ['eos_token_id', eosId]] as const) {
    if (id < 0 || id >= vocabSize) throw new CorruptCheckpointError(`${source}: tokenizer.ggml.${key} ${id} is outside the vocabulary (${vocabSize})`)
  }
  return {
    architecture: 'llama',
    name: meta.string('general.name', baseName(source)),
    dim,
    hiddenDim,
    nLayers,
    nHeads,
    nKvHeads,
    headDim,
    vocabSize,
    contextLength,
    ropeTheta,
    ropeLayout: 'interleaved',
    normEps,
    tiedEmbeddings: !tensors.has('output'),
    bosId,
    eosId,
    stopIds: [...new Set([eosId, bosId])]
  }
}

/** SentencePiece vocabulary (`tokenizer.ggml.model` = llama), pieces as UTF-8 with '▁' → ' '. */
function llamaTokenizer (meta: Metadata, config: ModelConfig, source: string): TokenizerSpec {
  const tokens = meta.strings('tokenizer.ggml.tokens')
  const scores = meta.floats('tokenizer.ggml.scores') ?? new Float32Array(tokens.length)
  const types = meta.ints('tokenizer.ggml.token_type')
  for (const [key, arr] of [['scores', scores], ['token_type', types]] as const) {
    if (arr !== undefined && arr.length !== tokens.length) {
      throw new CorruptCheckpointError(`${source}: tokenizer.ggml.${key} has ${arr.length} entries for ${tokens.length} tokens`)
    }
  }
  const unkId = meta.int('tokenizer.ggml.unknown_token_id', 0)
  if (unkId < 0 || unkId >= tokens.length) {
    throw new CorruptCheckpointError(`${source}: tokenizer.ggml.unknown_token_id ${unkId} is outside the vocabulary (${tokens.length})`)
  }
  const encoder = new TextEncoder()
  return {
    pieces: tokens.map((t) => encoder.encode(t.replaceAll('\u2581', ' '))),
    scores,
    types,
    bosId: config.bosId,
    eosId: config.eosId,
    unkId,
    addDummyPrefix: meta.bool('tokenizer.ggml.add_space_prefix', true)
  }
}

/**
 * Load a Llama GGUF (v2/v3) checkpoint. Tensors are renamed to our normalized names and their
 * data are zero-copy views of `bytes`; `source` (path or URL) names the file in errors.
 */
export function readGguf (bytes: Uint8Array, source: string): Checkpoint {
  const file = parseGguf(bytes, source)
  const meta = new Metadata(file.metadata, source)
  const arch = meta.string('general.architecture')
  if (arch !== 'llama') throw new UnsupportedArchitectureError(`${source}: architecture '${arch}' is not supported (only llama)`)

  const tensors = new Map<string, Tensor>()
  for (const t of file.tensors) {
    const name = fromGgufName(t.name)
    if (name === undefined) {
      throw new UnsupportedArchitectureError(`${source}: tensor '${t.name}' is not part of a plain Llama model`)
    }
    tensors.set(name, { ...t, name })
  }
  const config = llamaConfig(meta, tensors, source)
  checkLlamaTensors(tensors, config, source)
  const tokenizer = meta.string('tokenizer.ggml.model', '') === 'llama' ? llamaTokenizer(meta, config, source) : undefined
  return { format: 'gguf', source, config, tensors, tokenizer }
}
