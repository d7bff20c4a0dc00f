import { CorruptCheckpointError, MissingFieldError } from './errors.ts'
import type { Checkpoint, DType, ModelConfig, Tensor } from './types.ts'

/** Tensors inside a part start at multiples of this many bytes, so typed-array views line up. */
export const PART_ALIGNMENT = 32

export interface ManifestTensor {
  name: string
  dtype: DType
  shape: number[]
  /** Byte offset inside the part. */
  offset: number
  byteLength: number
}

export type PartKind = 'embedding' | 'layer' | 'head'

/** The unit shipped over IPFS: the embedding, one layer, or the head. */
export interface ManifestPart {
  /** `embedding`, `layer.N` or `head`. */
  id: string
  kind: PartKind
  layer?: number
  tensors: ManifestTensor[]
  byteLength: number
  /** Other parts this one needs: a tied head needs the embedding table. */
  requires: string[]
}

export interface LayerManifest {
  version: 1
  config: ModelConfig
  parts: ManifestPart[]
}

function layerOf (name: string): number | undefined {
  const m = /^layers\.(\d+)\./.exec(name)
  return m === null ? undefined : Number(m[1])
}

function partIdOf (name: string): string {
  const layer = layerOf(name)
  if (layer !== undefined) return `layer.${layer}`
  if (name === 'tok_embeddings') return 'embedding'
  if (name === 'norm' || name === 'output') return 'head'
  throw new CorruptCheckpointError(`tensor ${name} belongs to no part of a Llama model`)
}

/** Which tensors and bytes belong to the embedding, each layer, and the head. */
export function layerManifest (ckpt: Checkpoint): LayerManifest {
  const { config } = ckpt
  const ids = ['embedding', ...Array.from({ length: config.nLayers }, (_, l) => `layer.${l}`), 'head']
  const parts = new Map<string, ManifestPart>(ids.map(id => {
    const layer = id.startsWith('layer.') ? Number(id.slice(6)) : undefined
    const kind: PartKind = layer !== undefined ? 'layer' : id as PartKind
    const requires = id === 'head' && config.tiedEmbeddings ? ['embedding'] : []
    return [id, { id, kind, layer, tensors: [], byteLength: 0, requires }]
  }))
  const names = [...ckpt.tensors.keys()].sort()
  for (const name of names) {
    const t = ckpt.tensors.get(name)!
    const part = parts.get(partIdOf(name))
    if (part === undefined) throw new CorruptCheckpointError(`tensor ${name} names a layer beyond the model's ${config.nLayers}`)
    const offset = Math.ceil(part.byteLength / PART_ALIGNMENT) * PART_ALIGNMENT
    part.tensors.push({ name, dtype: t.dtype, shape: [...t.shape], offset, byteLength: t.data.byteLength })
    part.byteLength = offset + t.data.byteLength
  }
  for (const part of parts.values()) {
    if (part.tensors.length === 0) throw new MissingFieldError(`${ckpt.source}: part ${part.id} has no tensors`)
  }
  return { version: 1, config, parts: [...parts.values()] }
}

/** A part's tensors laid out as one byte string (what gets stored as its file). */
export function partBytes (ckpt: Checkpoint, part: ManifestPart): Uint8Array {
  const out = new Uint8Array(part.byteLength)
  for (const t of part.tensors) {
    const tensor = ckpt.tensors.get(t.name)
    if (tensor === undefined) throw new MissingFieldError(`${ckpt.source}: tensor ${t.name} of part ${part.id} is missing`)
    out.set(tensor.data, t.offset)
  }
  return out
}

/** The tensors of a part from its bytes, as zero-copy views. */
export function partTensors (part: ManifestPart, bytes: Uint8Array): Tensor[] {
  if (bytes.byteLength !== part.byteLength) {
    throw new CorruptCheckpointError(`part ${part.id} is ${bytes.byteLength} bytes, its manifest says ${part.byteLength}`)
  }
  return part.tensors.map(t => ({ name: t.name, dtype: t.dtype, shape: [...t.shape], data: bytes.subarray(t.offset, t.offset + t.byteLength) }))
}

/** The parts a stage running layers [l0, l1) needs, with embedding and head as asked. */
export function partsForStage (manifest: LayerManifest, layers: [number, number], opts: { embed?: boolean, head?: boolean } = {}): ManifestPart[] {
  const [l0, l1] = layers
  const embed = opts.embed ?? l0 === 0
  const head = opts.head ?? l1 === manifest.config.nLayers
  const wanted = new Set<string>()
  for (let l = l0; l < l1; l++) wanted.add(`layer.${l}`)
  if (embed) wanted.add('embedding')
  if (head) {
    wanted.add('head')
    for (const r of manifest.parts.find(p => p.id === 'head')?.requires ?? []) wanted.add(r)
  }
  return manifest.parts.filter(p => wanted.has(p.id))
}
