import { toFloat32 } from '@shardmesh/model'
import type { ComponentModel, EncoderConfig } from '@shardmesh/model'

/**
 * A plain float64 forward pass of component models, written from the model description alone
 * (no engine code): the engine's f32 results must agree with it to rounding. RoPE pairs
 * (i, i + headDim/2) at positions 0..n-1; attention causal or over every position;
 * cross-attention over the memory with no RoPE and no mask.
 */

type Rows = number[][]

function weights (model: ComponentModel): (name: string) => number[] {
  const cache = new Map<string, number[]>()
  return (name) => {
    let w = cache.get(name)
    if (w === undefined) {
      const t = model.tensors.get(name)
      if (t === undefined) throw new Error(`reference: no tensor ${name}`)
      w = Array.from(toFloat32(t))
      cache.set(name, w)
    }
    return w
  }
}

/** W `(rows, x.length)` · x */
function matvec (w: number[], x: number[]): number[] {
  const cols = x.length
  const out = new Array<number>(w.length / cols).fill(0)
  for (let r = 0; r < out.length; r++) for (let c = 0; c < cols; c++) out[r] += w[r * cols + c] * x[c]
  return out
}

function rmsnorm (x: number[], g: number[], eps: number): number[] {
  const scale = 1 / Math.sqrt(x.reduce((a, v) => a + v * v, 0) / x.length + eps)
  return x.map((v, i) => g[i] * v * scale)
}

function rope (x: number[], heads: number, headDim: number, pos: number, theta: number): number[] {
  const out = [...x]
  const half = headDim / 2
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      const angle = pos / theta ** (2 * i / headDim)
      const a = x[h * headDim + i]
      const b = x[h * headDim + i + half]
      out[h * headDim + i] = a * Math.cos(angle) - b * Math.sin(angle)
      out[h * headDim + i + half] = a * Math.sin(angle) + b * Math.cos(angle)
    }
  }
  return out
}

/** Multi-head attention with GQA: query row t sees keys 0..t (causal) or all. */
function attend (c: EncoderConfig, q: Rows, k: Rows, v: Rows, causal: boolean): Rows {
  const { nHeads, nKvHeads, headDim } = c
  return q.map((qt, t) => {
    const out = new Array<number>(nHeads * headDim).fill(0)
    const keys = causal ? t + 1 : k.length
    for (let h = 0; h < nHeads; h++) {
      const kv = Math.floor(h / (nHeads / nKvHeads)) * headDim
      const scores = Array.from({ length: keys }, (_, p) => {
        let s = 0
        for (let i = 0; i < headDim; i++) s += qt[h * headDim + i] * k[p][kv + i]
        return s / Math.sqrt(headDim)
      })
      const m = Math.max(...scores)
      const e = scores.map(s => Math.exp(s - m))
      const total = e.reduce((a, b) => a + b, 0)
      for (let p = 0; p < keys; p++) for (let i = 0; i < headDim; i++) out[h * headDim + i] += e[p] / total * v[p][kv + i]
    }
    return out
  })
}

/** The residual stream after every block of `component`, from the embedded input. */
function blocks (model: ComponentModel, component: string, c: EncoderConfig, x: Rows, memory?: Rows): Rows {
  const w = weights(model)
  for (let l = 0; l < c.nLayers; l++) {
    const p = `${component}.layers.${l}.`
    let xn = x.map(r => rmsnorm(r, w(p + 'attn_norm'), c.normEps))
    const q = xn.map((r, t) => rope(matvec(w(p + 'wq'), r), c.nHeads, c.headDim, t, c.ropeTheta))
    const k = xn.map((r, t) => rope(matvec(w(p + 'wk'), r), c.nKvHeads, c.headDim, t, c.ropeTheta))
    const v = xn.map(r => matvec(w(p + 'wv'), r))
    x = x.map((r, t) => { const o = matvec(w(p + 'wo'), attend(c, q, k, v, c.causal)[t]); return r.map((a, i) => a + o[i]) })
    if (memory !== undefined) {
      xn = x.map(r => rmsnorm(r, w(p + 'cross_norm'), c.normEps))
      const cq = xn.map(r => matvec(w(p + 'cross_q'), r))
      const ck = memory.map(r => matvec(w(p + 'cross_k'), r))
      const cv = memory.map(r => matvec(w(p + 'cross_v'), r))
      const att = attend(c, cq, ck, cv, false)
      x = x.map((r, t) => { const o = matvec(w(p + 'cross_o'), att[t]); return r.map((a, i) => a + o[i]) })
    }
    xn = x.map(r => rmsnorm(r, w(p + 'ffn_norm'), c.normEps))
    x = x.map((r, t) => {
      const g = matvec(w(p + 'w1'), xn[t])
      const u = matvec(w(p + 'w3'), xn[t])
      const o = matvec(w(p + 'w2'), g.map((a, i) => a / (1 + Math.exp(-a)) * u[i]))
      return r.map((a, i) => a + o[i])
    })
  }
  return x
}

const rowsOf = (flat: number[], dim: number): Rows => Array.from({ length: flat.length / dim }, (_, t) => flat.slice(t * dim, (t + 1) * dim))

/** A tower's embedding (not normalized). */
export function referenceTower (model: ComponentModel, component: 'text' | 'image', input: number[] | Float32Array): number[] {
  const { config } = model
  if (config.kind !== 'two_tower') throw new Error('not a two-tower model')
  const w = weights(model)
  const c = config[component]
  let x: Rows
  if (component === 'text') {
    x = (input as number[]).map(id => w('text.embed').slice(id * c.dim, (id + 1) * c.dim))
  } else {
    const { imageSize: size, patchSize: ps, channels: ch } = config.image
    const pixels = input as Float32Array
    x = []
    for (let py = 0; py < size / ps; py++) {
      for (let px = 0; px < size / ps; px++) {
        const patch: number[] = []
        for (let dy = 0; dy < ps; dy++) for (let dx = 0; dx < ps; dx++) for (let k = 0; k < ch; k++) patch.push(pixels[((py * ps + dy) * size + px * ps + dx) * ch + k])
        x.push(matvec(w('image.patch_embed'), patch))
      }
    }
  }
  x = blocks(model, component, c, x).map(r => rmsnorm(r, w(`${component}.final_norm`), c.normEps))
  const pooled = component === 'text' ? x[x.length - 1] : x[0].map((_, i) => x.reduce((a, r) => a + r[i], 0) / x.length)
  return matvec(w(`${component}.proj`), pooled)
}

/** The encoder's memory `(n, dim)` after its final norm. */
export function referenceMemory (model: ComponentModel, tokens: number[]): Rows {
  const { config } = model
  if (config.kind !== 'encoder_decoder') throw new Error('not an encoder–decoder model')
  const w = weights(model)
  const c = config.encoder
  const x = tokens.map(id => w('encoder.embed').slice(id * c.dim, (id + 1) * c.dim))
  return blocks(model, 'encoder', c, x).map(r => rmsnorm(r, w('encoder.final_norm'), c.normEps))
}

/** The decoder's logits at the last of `tokens`, recomputing every position. */
export function referenceDecoderLogits (model: ComponentModel, memory: Rows, tokens: number[]): number[] {
  const { config } = model
  if (config.kind !== 'encoder_decoder') throw new Error('not an encoder–decoder model')
  const w = weights(model)
  const c = config.decoder
  const x = blocks(model, 'decoder', c, tokens.map(id => w('decoder.embed').slice(id * c.dim, (id + 1) * c.dim)), memory)
  return matvec(w('decoder.head'), rmsnorm(x[x.length - 1], w('decoder.final_norm'), c.normEps))
}

export { rowsOf }
