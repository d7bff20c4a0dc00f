import { base64 } from 'multiformats/bases/base64'
import { InvalidManifestError } from './errors.ts'
import type { TokenizerSpec } from '@shardmesh/model'

interface TokenizerJson {
  format: 'shardmesh-tokenizer'
  /** Raw bytes of each piece, base64 (no multibase prefix). */
  pieces: string[]
  /** Float32 scores, little-endian, base64 (exact, -0 included). */
  scores: string
  types?: number[]
  bosId: number
  eosId: number
  unkId: number
  addDummyPrefix: boolean
}

function f32le (values: Float32Array): Uint8Array {
  const out = new Uint8Array(values.length * 4)
  const view = new DataView(out.buffer)
  values.forEach((v, i) => { view.setFloat32(i * 4, v, true) })
  return out
}

/** A tokenizer as the bytes of its UnixFS file (UTF-8 JSON). */
export function encodeTokenizer (spec: TokenizerSpec): Uint8Array {
  const json: TokenizerJson = {
    format: 'shardmesh-tokenizer',
    pieces: spec.pieces.map(p => base64.baseEncode(p)),
    scores: base64.baseEncode(f32le(spec.scores)),
    ...(spec.types !== undefined ? { types: Array.from(spec.types) } : {}),
    bosId: spec.bosId,
    eosId: spec.eosId,
    unkId: spec.unkId,
    addDummyPrefix: spec.addDummyPrefix
  }
  return new TextEncoder().encode(JSON.stringify(json))
}

/** Parse a tokenizer file; errors are InvalidManifestError naming `source` (it is part of the model's manifest). */
export function decodeTokenizer (bytes: Uint8Array, source: string): TokenizerSpec {
  const where = `tokenizer ${source}`
  let t: TokenizerJson
  try {
    t = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  } catch (err) {
    throw new InvalidManifestError(`${where} is not UTF-8 JSON: ${(err as Error).message}`)
  }
  if (t?.format !== 'shardmesh-tokenizer' || !Array.isArray(t.pieces) || typeof t.scores !== 'string') {
    throw new InvalidManifestError(`${where}: needs format "shardmesh-tokenizer", pieces and scores`)
  }
  if (t.types !== undefined && (!Array.isArray(t.types) || t.types.length !== t.pieces.length || !t.types.every(x => Number.isInteger(x) && x === (x | 0)))) throw new InvalidManifestError(`${where}: types must have one int32 per piece`)
  for (const k of ['bosId', 'eosId', 'unkId'] as const) {
    if (!Number.isInteger(t[k]) || t[k] < 0 || t[k] >= t.pieces.length) throw new InvalidManifestError(`${where}: ${k} must be a piece id`)
  }
  let pieces: Uint8Array[]
  let scoreBytes: Uint8Array
  try {
    pieces = t.pieces.map(p => base64.baseDecode(p))
    scoreBytes = base64.baseDecode(t.scores)
  } catch (err) {
    throw new InvalidManifestError(`${where}: pieces and scores must be base64: ${(err as Error).message}`)
  }
  if (scoreBytes.byteLength !== pieces.length * 4) throw new InvalidManifestError(`${where}: ${scoreBytes.byteLength / 4} scores for ${pieces.length} pieces`)
  const view = new DataView(scoreBytes.buffer, scoreBytes.byteOffset, scoreBytes.byteLength)
  return {
    pieces,
    scores: Float32Array.from({ length: pieces.length }, (_, i) => view.getFloat32(i * 4, true)),
    ...(t.types !== undefined ? { types: Int32Array.from(t.types) } : {}),
    bosId: t.bosId,
    eosId: t.eosId,
    unkId: t.unkId,
    addDummyPrefix: t.addDummyPrefix === true
  }
}
