/** Hugging Face Llama tensor names ↔ the normalized names of `Checkpoint.tensors`. */

const GLOBAL: Record<string, string> = {
  'model.embed_tokens.weight': 'tok_embeddings',
  'model.norm.weight': 'norm',
  'lm_head.weight': 'output'
}

const PER_LAYER: Record<string, string> = {
  'input_layernorm.weight': 'attention_norm',
  'self_attn.q_proj.weight': 'wq',
  'self_attn.k_proj.weight': 'wk',
  'self_attn.v_proj.weight': 'wv',
  'self_attn.o_proj.weight': 'wo',
  'post_attention_layernorm.weight': 'ffn_norm',
  'mlp.gate_proj.weight': 'w1',
  'mlp.down_proj.weight': 'w2',
  'mlp.up_proj.weight': 'w3'
}

const GLOBAL_BACK = Object.fromEntries(Object.entries(GLOBAL).map(([hf, ours]) => [ours, hf]))
const PER_LAYER_BACK = Object.fromEntries(Object.entries(PER_LAYER).map(([hf, ours]) => [ours, hf]))

/** `model.layers.3.mlp.up_proj.weight` → `layers.3.w3`; undefined for names we do not know. */
export function normalizedName (hfName: string): string | undefined {
  if (Object.hasOwn(GLOBAL, hfName)) return GLOBAL[hfName]
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(hfName)
  if (m === null || !Object.hasOwn(PER_LAYER, m[2])) return undefined
  return `layers.${m[1]}.${PER_LAYER[m[2]]}`
}

/** `layers.3.w3` → `model.layers.3.mlp.up_proj.weight`; undefined for names we do not know. */
export function hfName (name: string): string | undefined {
  if (Object.hasOwn(GLOBAL_BACK, name)) return GLOBAL_BACK[name]
  const m = /^layers\.(\d+)\.(.+)$/.exec(name)
  if (m === null || !Object.hasOwn(PER_LAYER_BACK, m[2])) return undefined
  return `model.layers.${m[1]}.${PER_LAYER_BACK[m[2]]}`
}

/** Buffers some HF checkpoints store that the model does not need (recomputed at run time). */
export function isIgnorableHfTensor (hfName: string): boolean {
  return hfName.endsWith('.rotary_emb.inv_freq')
}
