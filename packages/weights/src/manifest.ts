import { PART_ALIGNMENT, preview, tensorByteLength } from '@shardmesh/model'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { MANIFEST_FORMAT, MANIFEST_VERSION } from './constants.ts'
import { InvalidCidError, InvalidManifestError } from './errors.ts'
import type { ManifestPartRef, ModelManifest } from './types.ts'
import type { DType, ModelConfig } from '@shardmesh/model'

const DTYPES = new Set<DType>(['F32', 'F16', 'BF16', 'Q8_0', 'Q4_0'])
const DAG_PB = 0x70
const CONFIG_KEYS = new Set(['architecture', 'name', 'dim', 'hiddenDim', 'nLayers', 'nHeads', 'nKvHeads', 'headDim', 'vocabSize', 'contextLength', 'ropeTheta', 'ropeLayout', 'normEps', 'tiedEmbeddings', 'bosId', 'eosId', 'stopIds'])
const PART_KEYS = new Set(['id', 'kind', 'layer', 'tensors', 'byteLength', 'requires', 'cid'])
const TENSOR_KEYS = new Set(['name', 'dtype', 'shape', 'offset', 'byteLength'])

/** Only the checked fields, in the file's order: an unknown field (say, nested 12k deep) is not carried into the manifest. */
function known<T> (o: object, keys: Set<string>): T {
  return Object.fromEntries(Object.entries(o).filter(([k]) => keys.has(k))) as T
}

/** The manifest as the bytes of its UnixFS file (UTF-8 JSON). */
export function encodeManifest (manifest: ModelManifest): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(manifest))
}

/** A CID from its string form; `what` names it in the error. */
export function parseCid (text: string, what = 'CID'): CID {
  try {
    return CID.parse(text)
  } catch (err) {
    throw new InvalidCidError(`${what} "${text}" is not a CID: ${(err as Error).message}`)
  }
}

/** A CID naming a UnixFS file of ours (CIDv1, dag-pb or raw), or an InvalidManifestError naming `where`. */
function fileCid (value: unknown, where: string): string {
  if (typeof value !== 'string') throw new InvalidManifestError(`${where}: cid must be a string`)
  let cid: CID
  try { cid = CID.parse(value) } catch { throw new InvalidManifestError(`${where}: "${value}" is not a CID`) }
  if (cid.version !== 1 || (cid.code !== DAG_PB && cid.code !== raw.code)) throw new InvalidManifestError(`${where}: ${value} is not a CIDv1 UnixFS file (dag-pb or raw)`)
  return value
}

function count (value: unknown, where: string, min = 0): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) throw new InvalidManifestError(`${where} must be an integer >= ${min}, got ${preview(value)}`)
  return value
}

function checkConfig (c: unknown, where: string): ModelConfig {
  if (typeof c !== 'object' || c === null) throw new InvalidManifestError(`${where}: config must be an object`)
  const config = c as Record<string, unknown>
  if (config.architecture !== 'llama') throw new InvalidManifestError(`${where}: config.architecture must be "llama", got ${preview(config.architecture)}`)
  for (const k of ['dim', 'hiddenDim', 'nLayers', 'nHeads', 'nKvHeads', 'headDim', 'vocabSize', 'contextLength']) count(config[k], `${where}: config.${k}`, 1)
  for (const k of ['bosId', 'eosId']) count(config[k], `${where}: config.${k}`)
  for (const k of ['ropeTheta', 'normEps']) {
    if (typeof config[k] !== 'number' || !(config[k] > 0)) throw new InvalidManifestError(`${where}: config.${k} must be a positive number`)
  }
  if (config.ropeLayout !== 'interleaved' && config.ropeLayout !== 'half') throw new InvalidManifestError(`${where}: config.ropeLayout must be "interleaved" or "half"`)
  if (typeof config.tiedEmbeddings !== 'boolean') throw new InvalidManifestError(`${where}: config.tiedEmbeddings must be a boolean`)
  if (typeof config.name !== 'string') throw new InvalidManifestError(`${where}: config.name must be a string`)
  if (!Array.isArray(config.stopIds)) throw new InvalidManifestError(`${where}: config.stopIds must be an array`)
  config.stopIds.forEach((id, i) => count(id, `${where}: config.stopIds[${i}]`))
  return known<ModelConfig>(config, CONFIG_KEYS)
}

function checkPart (p: unknown, id: string, config: ModelConfig, where: string): ManifestPartRef {
  if (typeof p !== 'object' || p === null) throw new InvalidManifestError(`${where}: part ${id} must be an object`)
  const part = p as ManifestPartRef
  const at = `${where}: part ${id}`
  if (part.id !== id) throw new InvalidManifestError(`${at}: expected id "${id}", got ${preview(part.id)}`)
  const layer = id.startsWith('layer.') ? Number(id.slice(6)) : undefined
  if (part.kind !== (layer === undefined ? id : 'layer') || part.layer !== layer) throw new InvalidManifestError(`${at}: kind/layer do not match the id`)
  const requires = id === 'head' && config.tiedEmbeddings ? ['embedding'] : []
  if (!Array.isArray(part.requires) || part.requires.length !== requires.length || part.requires.some((r, i) => r !== requires[i])) throw new InvalidManifestError(`${at}: requires must be ${JSON.stringify(requires)}`)
  fileCid(part.cid, at)
  count(part.byteLength, `${at}: byteLength`)
  if (!Array.isArray(part.tensors) || part.tensors.length === 0) throw new InvalidManifestError(`${at}: tensors must be a non-empty array`)
  for (const t of part.tensors) {
    const tw = `${at}: tensor ${preview(t?.name)}`
    if (typeof t?.name !== 'string' || !DTYPES.has(t.dtype) || !Array.isArray(t.shape)) throw new InvalidManifestError(`${tw}: needs name, dtype (${[...DTYPES].join('/')}) and shape`)
    t.shape.forEach((d, i) => count(d, `${tw}: shape[${i}]`, 1))
    count(t.offset, `${tw}: offset`)
    count(t.byteLength, `${tw}: byteLength`)
    let expected: number
    try { expected = tensorByteLength(t.dtype, t.shape, t.name) } catch (err) { throw new InvalidManifestError(`${tw}: ${(err as Error).message}`) }
    if (t.byteLength !== expected) throw new InvalidManifestError(`${tw}: byteLength ${t.byteLength} does not fit ${t.dtype} [${t.shape.join(', ')}] (${expected})`)
    if (t.offset % PART_ALIGNMENT !== 0 || t.offset + t.byteLength > part.byteLength) throw new InvalidManifestError(`${tw}: bytes [${t.offset}, ${t.offset + t.byteLength}) are unaligned or outside the part's ${part.byteLength}`)
  }
  return { ...known<ManifestPartRef>(part, PART_KEYS), tensors: part.tensors.map(t => known(t, TENSOR_KEYS)) }
}

/** Parse and check a manifest; every error is an InvalidManifestError naming `source` and the field. */
export function decodeManifest (bytes: Uint8Array, source: string): ModelManifest {
  const where = `manifest ${source}`
  let m: Record<string, unknown>
  try {
    m = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  } catch (err) {
    throw new InvalidManifestError(`${where} is not UTF-8 JSON: ${(err as Error).message}`)
  }
  if (typeof m !== 'object' || m === null || m.format !== MANIFEST_FORMAT) throw new InvalidManifestError(`${where}: format must be "${MANIFEST_FORMAT}" (is this a shardmesh manifest?)`)
  if (m.version !== MANIFEST_VERSION) throw new InvalidManifestError(`${where}: version ${preview(m.version)} is not supported (expected ${MANIFEST_VERSION})`)
  const config = checkConfig(m.config, where)
  if (!Array.isArray(m.parts)) throw new InvalidManifestError(`${where}: parts must be an array`)
  // the count first: the part ids are built per layer, and nLayers may claim 2^53
  if (m.parts.length !== config.nLayers + 2) throw new InvalidManifestError(`${where}: expected ${config.nLayers + 2} parts for ${config.nLayers} layers, got ${m.parts.length}`)
  const ids = ['embedding', ...Array.from({ length: config.nLayers }, (_, l) => `layer.${l}`), 'head']
  const parts = ids.map((id, i) => checkPart((m.parts as unknown[])[i], id, config, where))
  const total = parts.reduce((a, p) => a + p.byteLength, 0)
  if (m.byteLength !== total) throw new InvalidManifestError(`${where}: byteLength ${preview(m.byteLength)} is not the parts' sum ${total}`)
  let tokenizer: ModelManifest['tokenizer'] = null
  if (m.tokenizer !== null) {
    const t = m.tokenizer as { cid?: unknown, byteLength?: unknown } | undefined
    if (typeof t !== 'object' || t === null) throw new InvalidManifestError(`${where}: tokenizer must be an object or null`)
    tokenizer = { cid: fileCid(t.cid, `${where}: tokenizer`), byteLength: count(t.byteLength, `${where}: tokenizer.byteLength`) }
  }
  return { format: MANIFEST_FORMAT, version: MANIFEST_VERSION, config, parts, tokenizer, byteLength: total }
}
