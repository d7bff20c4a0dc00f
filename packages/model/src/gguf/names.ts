import { CorruptCheckpointError } from '../errors.ts'

/** GGUF tensor names ↔ our normalized names (see `Checkpoint` in types.ts). */

const GLOBAL: Record<string, string> = {
  'token_embd.weight': 'tok_embeddings',
  'output_norm.weight': 'norm',
  'output.weight': 'output'
}

const LAYER: Record<string, string> = {
  attn_norm: 'attention_norm',
  attn_q: 'wq',
  attn_k: 'wk',
  attn_v: 'wv',
  attn_output: 'wo',
  ffn_norm: 'ffn_norm',
  ffn_gate: 'w1',
  ffn_down: 'w2',
  ffn_up: 'w3'
}

const invert = (m: Record<string, string>): Record<string, string> =>
  Object.fromEntries(Object.entries(m).map(([k, v]) => [v, k]))
const GLOBAL_TO_GGUF = invert(GLOBAL)
const LAYER_TO_GGUF = invert(LAYER)

/** `blk.3.attn_q.weight` → `layers.3.wq`; undefined for names a Llama GGUF should not have. */
export function fromGgufName (name: string): string | undefined {
  if (Object.hasOwn(GLOBAL, name)) return GLOBAL[name]
  const m = /^blk\.(\d+)\.(\w+)\.weight$/.exec(name)
  if (m === null || !Object.hasOwn(LAYER, m[2])) return undefined
  return `layers.${m[1]}.${LAYER[m[2]]}`
}

/** `layers.3.wq` → `blk.3.attn_q.weight`. */
export function toGgufName (name: string): string {
  if (Object.hasOwn(GLOBAL_TO_GGUF, name)) return GLOBAL_TO_GGUF[name]
  const m = /^layers\.(\d+)\.(\w+)$/.exec(name)
  if (m === null || !Object.hasOwn(LAYER_TO_GGUF, m[2])) throw new CorruptCheckpointError(`no GGUF name for tensor ${name}`)
  return `blk.${m[1]}.${LAYER_TO_GGUF[m[2]]}.weight`
}
