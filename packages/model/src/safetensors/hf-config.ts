import { CorruptCheckpointError, MissingFieldError, UnsupportedArchitectureError } from '../errors.ts'
import type { ModelConfig } from '../types.ts'
import { preview } from '../util.ts'

/** Defaults of Hugging Face `LlamaConfig` for fields a `config.json` may leave out. */
const HF_DEFAULTS = {
  max_position_embeddings: 2048,
  rope_theta: 10000,
  rms_norm_eps: 1e-6,
  tie_word_embeddings: false,
  bos_token_id: 1,
  eos_token_id: 2
}

const TORCH_DTYPES = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' } as const

/** Turns a Hugging Face Llama `config.json` (already parsed) into a ModelConfig. */
export function parseHfConfig (json: unknown, source: string, fallbackName: string): ModelConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new CorruptCheckpointError(`${source}: config.json is not a JSON object`)
  }
  const c = json as Record<string, unknown>
  const architectures = Array.isArray(c.architectures) ? c.architectures : []
  if (c.model_type !== 'llama' && !architectures.includes('LlamaForCausalLM')) {
    const value = c.model_type ?? (architectures.length > 0 ? architectures.join(', ') : 'none given')
    throw new UnsupportedArchitectureError(`${source}: model_type ${preview(value, false)} is not supported; only llama (LlamaForCausalLM) is`)
  }
  unsupportedUnless(c.rope_scaling == null, `rope_scaling ${preview(c.rope_scaling)}`, source)
  unsupportedUnless(c.attention_bias !== true && c.mlp_bias !== true, 'bias terms (attention_bias / mlp_bias)', source)
  unsupportedUnless(c.hidden_act == null || c.hidden_act === 'silu', `hidden_act ${preview(c.hidden_act, false)}`, source)

  const int = (key: string, fallback?: number): number => {
    const value = c[key] ?? fallback
    if (value === undefined) throw new MissingFieldError(`${source}: config.json has no ${key}`)
    if (!Number.isSafeInteger(value) || (value as number) < 0) {
      throw new CorruptCheckpointError(`${source}: config.json ${key} is ${preview(value)}, not a non-negative integer`)
    }
    return value as number
  }
  const num = (key: keyof typeof HF_DEFAULTS): number => {
    const value = c[key] ?? HF_DEFAULTS[key]
    if (typeof value !== 'number') throw new CorruptCheckpointError(`${source}: config.json ${key} is ${preview(value)}, not a number`)
    return value
  }

  const dim = int('hidden_size')
  const nHeads = int('num_attention_heads')
  const nKvHeads = int('num_key_value_heads', nHeads)
  if (nHeads === 0 || nKvHeads === 0 || nHeads % nKvHeads !== 0) {
    throw new CorruptCheckpointError(`${source}: ${nHeads} attention heads cannot be shared by ${nKvHeads} key/value heads`)
  }
  if (c.head_dim == null && dim % nHeads !== 0) {
    throw new CorruptCheckpointError(`${source}: hidden_size ${dim} is not a multiple of ${nHeads} heads and no head_dim is given`)
  }
  const headDim = int('head_dim', dim / nHeads)
  if (headDim % 2 !== 0) throw new CorruptCheckpointError(`${source}: head_dim ${headDim} is odd; RoPE needs pairs`)

  const bosId = int('bos_token_id', HF_DEFAULTS.bos_token_id)
  const eosIds = eosList(c.eos_token_id ?? HF_DEFAULTS.eos_token_id, source)
  const name = typeof c._name_or_path === 'string' && c._name_or_path !== '' ? c._name_or_path : fallbackName
  return {
    architecture: 'llama',
    name,
    dim,
    hiddenDim: int('intermediate_size'),
    nLayers: int('num_hidden_layers'),
    nHeads,
    nKvHeads,
    headDim,
    vocabSize: int('vocab_size'),
    contextLength: int('max_position_embeddings', HF_DEFAULTS.max_position_embeddings),
    ropeTheta: num('rope_theta'),
    ropeLayout: 'half',
    normEps: num('rms_norm_eps'),
    tiedEmbeddings: (c.tie_word_embeddings ?? HF_DEFAULTS.tie_word_embeddings) === true,
    bosId,
    eosId: eosIds[0],
    stopIds: [...new Set([...eosIds, bosId])]
  }
}

/**
 * The `config.json` of a ModelConfig whose Q/K rows are in Hugging Face (`half`) order;
 * `dtype` is the storage type of the weights. Extra stop ids become an `eos_token_id` list.
 */
export function hfConfigJson (config: ModelConfig, dtype: keyof typeof TORCH_DTYPES): Record<string, unknown> {
  const eosIds = [...new Set([config.eosId, ...config.stopIds.filter((id) => id !== config.bosId)])]
  return {
    _name_or_path: config.name,
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_act: 'silu',
    hidden_size: config.dim,
    intermediate_size: config.hiddenDim,
    num_hidden_layers: config.nLayers,
    num_attention_heads: config.nHeads,
    num_key_value_heads: config.nKvHeads,
    head_dim: config.headDim,
    vocab_size: config.vocabSize,
    max_position_embeddings: config.contextLength,
    rope_theta: config.ropeTheta,
    rope_scaling: null,
    rms_norm_eps: config.normEps,
    tie_word_embeddings: config.tiedEmbeddings,
    attention_bias: false,
    mlp_bias: false,
    bos_token_id: config.bosId,
    eos_token_id: eosIds.length === 1 ? eosIds[0] : eosIds,
    torch_dtype: TORCH_DTYPES[dtype]
  }
}

function eosList (value: unknown, source: string): number[] {
  const list = Array.isArray(value) ? value : [value]
  if (list.length === 0 || !list.every((id) => Number.isSafeInteger(id) && id >= 0)) {
    throw new CorruptCheckpointError(`${source}: config.json eos_token_id ${preview(value)} is not a token id or a list of them`)
  }
  return list as number[]
}

function unsupportedUnless (ok: boolean, what: string, source: string): void {
  if (!ok) throw new UnsupportedArchitectureError(`${source}: ${what} is not supported by this Llama engine`)
}
