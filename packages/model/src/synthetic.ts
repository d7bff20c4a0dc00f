import { llamaShapes } from './gguf/shapes.ts'
import type { Checkpoint, ModelConfig, RopeLayout, Tensor, TokenizerSpec } from './types.ts'

/** Options of `syntheticModel`; every field is optional. */
export interface SyntheticModelInit {
  /** PRNG seed; the same init always gives the same bytes. @default 1 */
  seed?: number
  /** @default 64 */
  dim?: number
  /** FFN width. @default 176 */
  hiddenDim?: number
  /** @default 2 */
  nLayers?: number
  /** Query heads; dim / nHeads (the head size) must be even for RoPE. @default 4 */
  nHeads?: number
  /** Key/value heads, a divisor of nHeads. @default 2 */
  nKvHeads?: number
  /** At least 354: 3 control pieces, 256 byte pieces and the 95 printable ASCII characters. @default 512 */
  vocabSize?: number
  /** @default 256 */
  contextLength?: number
  /** Share the token embedding as LM head (no `output` tensor). @default true */
  tied?: boolean
  /** Only labels how the (random) Q/K rows are meant; the bytes do not change. @default 'half' */
  ropeLayout?: RopeLayout
  /** @default 10000 */
  ropeTheta?: number
  /** @default 1e-5 */
  normEps?: number
  /** @default 'synthetic' */
  name?: string
}

/** Named test and demo models. */
export const SYNTHETIC_PRESETS = {
  /** Head size 6, GQA group 2, widths that are not multiples of 8. */
  'tiny-gqa2': { dim: 36, hiddenDim: 100, nLayers: 3, nHeads: 6, nKvHeads: 3, vocabSize: 400, name: 'tiny-gqa2' },
  /** GQA group 4 with a separate LM head; dim 48 (not 40) so the 8 heads have an even size (6). */
  'tiny-gqa4-untied': { dim: 48, hiddenDim: 128, nLayers: 4, nHeads: 8, nKvHeads: 2, vocabSize: 512, tied: false, name: 'tiny-gqa4-untied' },
  /** Plain multi-head attention, odd widths (head size 10). */
  'tiny-mha-odd': { dim: 30, hiddenDim: 70, nLayers: 2, nHeads: 3, nKvHeads: 3, vocabSize: 367, name: 'tiny-mha-odd' },
  /**
   * 109,529,856 parameters (F32, 438 MB): 24,576,000 in the tied 32000×768 embedding,
   * 12 × 7,079,424 in the layers and 768 in the final norm.
   */
  'synthetic-100m': { dim: 768, hiddenDim: 2048, nLayers: 12, nHeads: 12, nKvHeads: 12, vocabSize: 32000, contextLength: 2048, name: 'synthetic-100m' }
} satisfies Record<string, SyntheticModelInit>

/** Logit standard deviation the embedding scale aims for (margins stay well above f32 noise). */
export const LOGIT_STD = 3
/** Spread of RMSNorm weights around 1. */
export const NORM_NOISE = 0.05
const FIRST_NORMAL_PIECE = 259
/** Merge alphabet: space then letters by English frequency, so common pairs merge first. */
const MERGE_ALPHABET = ' etaoinshrdlcumwfgypbvkjxqz'

/**
 * A deterministic random Llama with F32 weights and a byte-fallback BPE tokenizer.
 * Projections are N(0, 1/sqrt(fan_in)); embedding and LM head rows are N(0, LOGIT_STD/sqrt(dim)),
 * so the current token dominates the residual stream (attention alone drifts into loops)
 * and logits have std ≈ LOGIT_STD. Norm weights are 1 ± NORM_NOISE, except that a tied
 * model's final norm flips every other sign: with a tied head, logit(t) contains
 * Σ e_t[i]² · norm[i], which would otherwise make the model repeat its input token.
 */
export function syntheticModel (init: SyntheticModelInit = {}): Checkpoint {
  const config = syntheticConfig(init)
  const seed = init.seed ?? 1
  const tensors = new Map<string, Tensor>()
  for (const [name, shape] of llamaShapes(config)) {
    const values = new Float32Array(shape.reduce((a, b) => a * b, 1))
    if (shape.length === 1) {
      fillNormal(values, seed, name, 1, NORM_NOISE)
      if (name === 'norm' && config.tiedEmbeddings) alternateSigns(values)
    } else {
      const std = name === 'tok_embeddings' || name === 'output' ? LOGIT_STD / Math.sqrt(config.dim) : 1 / Math.sqrt(shape[1])
      fillNormal(values, seed, name, 0, std)
    }
    tensors.set(name, { name, dtype: 'F32', shape, data: new Uint8Array(values.buffer) })
  }
  // Q/K rows follow the conventions of the format that uses this layout
  const format = config.ropeLayout === 'half' ? 'safetensors' : 'gguf'
  return { format, source: `synthetic:${config.name}:seed=${seed}`, config, tensors, tokenizer: syntheticTokenizer(config.vocabSize) }
}

function syntheticConfig (init: SyntheticModelInit): ModelConfig {
  const dim = init.dim ?? 64
  const nHeads = init.nHeads ?? 4
  const nKvHeads = init.nKvHeads ?? 2
  const vocabSize = init.vocabSize ?? 512
  const headDim = dim / nHeads
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) {
    throw new RangeError(`dim ${dim} / nHeads ${nHeads} must be an even integer head size`)
  }
  if (nHeads % nKvHeads !== 0) throw new RangeError(`nKvHeads ${nKvHeads} must divide nHeads ${nHeads}`)
  if (vocabSize < FIRST_NORMAL_PIECE + 95) throw new RangeError(`vocabSize ${vocabSize} is below ${FIRST_NORMAL_PIECE + 95}`)
  return {
    architecture: 'llama',
    name: init.name ?? 'synthetic',
    dim,
    hiddenDim: init.hiddenDim ?? 176,
    nLayers: init.nLayers ?? 2,
    nHeads,
    nKvHeads,
    headDim,
    vocabSize,
    contextLength: init.contextLength ?? 256,
    ropeTheta: init.ropeTheta ?? 10000,
    ropeLayout: init.ropeLayout ?? 'half',
    normEps: init.normEps ?? 1e-5,
    tiedEmbeddings: init.tied ?? true,
    bosId: 1,
    eosId: 2,
    stopIds: [2, 1]
  }
}

/** Negates the even elements: a zero-mean ±1 pattern that keeps every |weight| ≈ 1. */
function alternateSigns (values: Float32Array): void {
  for (let i = 0; i < values.length; i += 2) values[i] = -values[i]
}

/**
 * `<unk>`, `<s>`, `</s>`, `<0x00>`…`<0xFF>` (ids 3..258), the printable ASCII characters,
 * then every string over MERGE_ALPHABET of length 2, 3, … (each one merge away from a
 * shorter piece), scored so earlier pieces merge first.
 */
export function syntheticTokenizer (vocabSize: number): TokenizerSpec {
  const text = ['<unk>', '<s>', '</s>']
  for (let b = 0; b < 256; b++) text.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`)
  for (let c = 0x20; c < 0x7f; c++) text.push(String.fromCharCode(c))
  for (let level = [...MERGE_ALPHABET]; text.length < vocabSize;) {
    const next: string[] = []
    for (const prefix of level) {
      for (const c of MERGE_ALPHABET) next.push(prefix + c)
    }
    text.push(...next.slice(0, vocabSize - text.length))
    level = next
  }
  const encoder = new TextEncoder()
  const scores = new Float32Array(vocabSize)
  const types = new Int32Array(vocabSize).fill(1)
  types[0] = 2
  types[1] = types[2] = 3
  types.fill(6, 3, FIRST_NORMAL_PIECE)
  for (let id = FIRST_NORMAL_PIECE; id < vocabSize; id++) scores[id] = FIRST_NORMAL_PIECE - id
  return { pieces: text.map((t) => encoder.encode(t)), scores, types, bosId: 1, eosId: 2, unkId: 0, addDummyPrefix: true }
}

/**
 * Fills `out` with mean + std·N(0, 1) from mulberry32 and Marsaglia's polar form of
 * Box-Muller (no trigonometry), seeded by (seed, name)
 * so every tensor is an independent stream whatever the generation order.
 */
export function fillNormal (out: Float32Array, seed: number, name: string, mean: number, std: number): void {
  let state = seed >>> 0
  for (let i = 0; i < name.length; i++) state = Math.imul(state ^ name.charCodeAt(i), 0x9e3779b1) >>> 0
  const symmetric = (): number => { // uniform in (-1, 1)
    state = (state + 0x6d2b79f5) | 0
    let t = Math.imul(state ^ (state >>> 15), state | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 2147483648 - 1
  }
  for (let i = 0; i < out.length; i += 2) {
    let u: number, v: number, s: number
    do {
      u = symmetric()
      v = symmetric()
      s = u * u + v * v
    } while (s >= 1 || s === 0)
    const f = std * Math.sqrt(-2 * Math.log(s) / s)
    out[i] = mean + f * u
    if (i + 1 < out.length) out[i + 1] = mean + f * v
  }
}
