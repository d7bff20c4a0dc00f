import { CorruptCheckpointError, MissingFieldError, UnsupportedArchitectureError } from '../errors.ts'
import type { TokenizerSpec } from '../types.ts'
import { preview } from '../util.ts'
import { NO_MERGE_SCORE } from './merge.ts'

type Json = Record<string, unknown>

const SPACE_MARK = '▁'
const utf8 = new TextEncoder()

function isRecord (v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/**
 * Whether the text gets SentencePiece's dummy-prefix `▁`. Accepts the two ways Llama-style
 * tokenizer.json files say it: normalizers Prepend('▁') + Replace(' ', '▁'), or a Metaspace
 * pre-tokenizer that does not split. Anything else would change the result, so it is refused.
 */
function dummyPrefix (json: Json, source: string): boolean {
  const unsupported = (what: string, v: unknown): Error =>
    new UnsupportedArchitectureError(`${source}: ${what} ${preview(v)} is not supported (only SentencePiece-style BPE)`)
  let prefix = false
  const normalizer = json.normalizer ?? null
  const sequence = isRecord(normalizer) && normalizer.type === 'Sequence' && Array.isArray(normalizer.normalizers)
  for (const n of sequence ? normalizer.normalizers as unknown[] : [normalizer]) {
    if (n === null) continue
    if (isRecord(n) && n.type === 'Prepend' && n.prepend === SPACE_MARK) prefix = true
    else if (isRecord(n) && n.type === 'Replace' && isRecord(n.pattern) && n.pattern.String === ' ' && n.content === SPACE_MARK) continue
    else throw unsupported('normalizer', n)
  }
  const pre = json.pre_tokenizer ?? null
  if (isRecord(pre) && pre.type === 'Metaspace' && pre.replacement === SPACE_MARK && pre.split === false) {
    prefix = typeof pre.prepend_scheme === 'string' ? pre.prepend_scheme !== 'never' : pre.add_prefix_space === true
  } else if (pre !== null) {
    throw unsupported('pre_tokenizer', pre)
  }
  return prefix
}

function mergePair (merge: unknown, rank: number, source: string): [string, string] {
  const pair = typeof merge === 'string' ? merge.split(' ') : merge
  if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') {
    throw new CorruptCheckpointError(`${source}: merge ${rank} ${preview(merge)} is not "a b" or ["a", "b"]`)
  }
  return [pair[0], pair[1]]
}

/** Reads a `tokenizer.json` file's bytes: text that is not UTF-8 JSON is a CorruptCheckpointError. */
export function readHfTokenizer (bytes: Uint8Array, source: string): TokenizerSpec {
  let json: unknown
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  } catch (err) {
    throw new CorruptCheckpointError(`${source}: tokenizer.json is not UTF-8 JSON`, { cause: err })
  }
  return tokenizerFromHfJson(json, source)
}

/**
 * Converts a Hugging Face `tokenizer.json` for Llama/SentencePiece-style BPE (byte fallback,
 * `▁` for spaces) into a TokenizerSpec whose run.c-style merges reproduce HF's BPE: a piece
 * made by merge number `rank` scores `-rank`, so earlier merges win; every other piece scores
 * `NO_MERGE_SCORE`, which run.c's loop never merges into. This matches HF when every split of
 * a merged piece into two pieces is itself a listed merge, as in tokenizers converted from
 * SentencePiece. Added tokens are not split out of the text (run.c does not either).
 */
export function tokenizerFromHfJson (json: unknown, source: string): TokenizerSpec {
  const model = isRecord(json) ? json.model : undefined
  if (!isRecord(json) || !isRecord(model)) throw new MissingFieldError(`${source}: no "model" object in tokenizer.json`)
  if (model.type !== 'BPE') {
    throw new UnsupportedArchitectureError(`${source}: tokenizer model type ${preview(model.type)} is not supported (only "BPE")`)
  }
  for (const field of ['continuing_subword_prefix', 'end_of_word_suffix', 'dropout'] as const) {
    if (model[field] != null) {
      throw new UnsupportedArchitectureError(`${source}: BPE ${field} ${preview(model[field])} is not supported`)
    }
  }
  if (!isRecord(model.vocab) || !Array.isArray(model.merges)) {
    throw new MissingFieldError(`${source}: BPE model needs a "vocab" object and a "merges" array`)
  }

  const tokens: string[] = []
  const idOf = new Map<string, number>()
  const added = Array.isArray(json.added_tokens) ? json.added_tokens.filter(isRecord) : []
  // ids are dense from 0, so none can reach the number of entries (a huge id would leave a sparse array)
  const entries = Object.keys(model.vocab).length + added.length
  const place = (content: string, id: unknown): void => {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= entries) {
      throw new CorruptCheckpointError(`${source}: token ${preview(content)} has id ${preview(id)}`)
    }
    if (tokens[id] !== undefined) return
    tokens[id] = content
    if (!idOf.has(content)) idOf.set(content, id)
  }
  for (const [content, id] of Object.entries(model.vocab)) place(content, id)
  for (const t of added) if (typeof t.content === 'string') place(t.content, t.id)
  for (let id = 0; id < tokens.length; id++) {
    if (tokens[id] === undefined) throw new CorruptCheckpointError(`${source}: no token has id ${id} (vocabulary size ${tokens.length})`)
  }
  if (model.byte_fallback !== true && tokens.some((t) => /^<0x[0-9A-F]{2}>$/.test(t))) {
    throw new UnsupportedArchitectureError(`${source}: byte_fallback is off but the vocabulary has <0xHH> byte pieces`)
  }

  const scores = new Float32Array(tokens.length).fill(NO_MERGE_SCORE)
  model.merges.forEach((merge, rank) => {
    const [a, b] = mergePair(merge, rank, source)
    const id = idOf.get(a + b)
    if (!idOf.has(a) || !idOf.has(b) || id === undefined) {
      throw new CorruptCheckpointError(`${source}: merge ${rank} ${preview(merge)} uses a piece not in the vocabulary`)
    }
    if (scores[id] === NO_MERGE_SCORE) scores[id] = -rank
  })

  const special = (content: string): number => {
    const id = added.find((t) => t.content === content)?.id ?? idOf.get(content)
    if (typeof id !== 'number') throw new MissingFieldError(`${source}: no ${content} token`)
    return id
  }
  return {
    pieces: tokens.map((t) => utf8.encode(t.replaceAll(SPACE_MARK, ' '))),
    scores,
    bosId: special('<s>'),
    eosId: special('</s>'),
    unkId: special(typeof model.unk_token === 'string' ? model.unk_token : '<unk>'),
    addDummyPrefix: dummyPrefix(json, source)
  }
}
