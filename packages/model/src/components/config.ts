import { CorruptCheckpointError, MissingFieldError, UnsupportedArchitectureError } from '../errors.ts'
import type { ModelConfig } from '../types.ts'
import { preview } from '../util.ts'
import type { ComponentModelConfig, DecoderConfig, EncoderConfig, EncoderDecoderConfig, ImageTowerConfig, TextTowerConfig, TwoTowerConfig } from './types.ts'

/** `model_type` in a component model's `config.json`, per kind. */
export const COMPONENT_MODEL_TYPES = { two_tower: 'shardmesh_two_tower', encoder_decoder: 'shardmesh_encoder_decoder' } as const

type Json = Record<string, unknown>

const BLOCK_KEYS = ['dim', 'hiddenDim', 'nLayers', 'nHeads', 'nKvHeads', 'headDim', 'normEps', 'ropeTheta', 'contextLength', 'causal']

/** The `config.json` of a component model: the config with its `model_type`. */
export function componentConfigJson (config: ComponentModelConfig): Json {
  return { model_type: COMPONENT_MODEL_TYPES[config.kind], ...config }
}

/**
 * A component model's config from its parsed `config.json`, checked field by field: a
 * missing field is MissingFieldError; a field of the wrong type or range, an unknown field, or
 * dimensions that contradict each other are CorruptCheckpointError; another `model_type` is
 * UnsupportedArchitectureError. Each message names `source` and the field.
 */
export function parseComponentConfig (json: unknown, source: string): ComponentModelConfig {
  const c = object(json, source, 'config.json')
  const kind = (Object.keys(COMPONENT_MODEL_TYPES) as Array<keyof typeof COMPONENT_MODEL_TYPES>).find(k => COMPONENT_MODEL_TYPES[k] === c.model_type)
  if (kind === undefined) {
    throw new UnsupportedArchitectureError(`${source}: model_type ${preview(c.model_type ?? 'none given', false)} is not a component model (${Object.values(COMPONENT_MODEL_TYPES).join(' or ')})`)
  }
  if (c.kind !== undefined && c.kind !== kind) throw new CorruptCheckpointError(`${source}: kind ${preview(c.kind)} contradicts model_type ${String(c.model_type)}`)
  const name = c.name
  if (name === undefined) throw new MissingFieldError(`${source}: config.json has no name`)
  if (typeof name !== 'string') throw new CorruptCheckpointError(`${source}: name is ${preview(name)}, not a string`)
  if (kind === 'two_tower') {
    known(c, ['model_type', 'kind', 'name', 'embedDim', 'text', 'image'], source, 'config.json')
    const text: TextTowerConfig = { ...block(c, 'text', source, ['vocabSize']), vocabSize: int(object(c.text, source, 'text'), 'vocabSize', `${source}: text`) }
    const img = object(c.image, source, 'image')
    const image: ImageTowerConfig = {
      ...block(c, 'image', source, ['imageSize', 'patchSize', 'channels']),
      imageSize: int(img, 'imageSize', `${source}: image`),
      patchSize: int(img, 'patchSize', `${source}: image`),
      channels: int(img, 'channels', `${source}: image`)
    }
    if (image.imageSize % image.patchSize !== 0) throw new CorruptCheckpointError(`${source}: image.imageSize ${image.imageSize} is not a multiple of image.patchSize ${image.patchSize}`)
    const patches = (image.imageSize / image.patchSize) ** 2
    if (patches > image.contextLength) throw new CorruptCheckpointError(`${source}: an image is ${patches} patches, more than image.contextLength ${image.contextLength}`)
    const config: TwoTowerConfig = { kind, name, embedDim: int(c, 'embedDim', source), text, image }
    return config
  }
  known(c, ['model_type', 'kind', 'name', 'vocabSize', 'encoder', 'decoder'], source, 'config.json')
  const vocabSize = int(c, 'vocabSize', source)
  const dec = object(c.decoder, source, 'decoder')
  const decoder: DecoderConfig = block(c, 'decoder', source, ['stopIds', 'startId'])
  if (!decoder.causal) throw new CorruptCheckpointError(`${source}: decoder.causal is false; a decoder generates one position at a time and must be causal`)
  const tokenId = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) < vocabSize
  if (dec.stopIds !== undefined) {
    if (!Array.isArray(dec.stopIds) || !dec.stopIds.every(tokenId)) throw new CorruptCheckpointError(`${source}: decoder.stopIds ${preview(dec.stopIds)} is not a list of token ids below vocabSize ${vocabSize}`)
    decoder.stopIds = [...dec.stopIds as number[]]
  }
  if (dec.startId !== undefined) {
    if (!tokenId(dec.startId)) throw new CorruptCheckpointError(`${source}: decoder.startId ${preview(dec.startId)} is not a token id below vocabSize ${vocabSize}`)
    decoder.startId = dec.startId as number
  }
  const config: EncoderDecoderConfig = { kind, name, vocabSize, encoder: block(c, 'encoder', source), decoder }
  return config
}

/** Checks an in-memory config as `parseComponentConfig` checks a file's; returns a normalized copy. */
export function checkComponentConfig (config: ComponentModelConfig, source = config?.name ?? 'config'): ComponentModelConfig {
  return parseComponentConfig(JSON.parse(JSON.stringify(componentConfigJson(config))), source)
}

/**
 * The decoder of an encoder–decoder model as a Llama `ModelConfig` (RoPE `half`, untied LM
 * head `decoder.head`), for the engine's stages; `bosId` is the decoder's start token.
 */
export function decoderModelConfig (config: EncoderDecoderConfig): ModelConfig {
  const d = config.decoder
  const stopIds = d.stopIds ?? []
  return {
    architecture: 'llama',
    name: `${config.name}/decoder`,
    dim: d.dim,
    hiddenDim: d.hiddenDim,
    nLayers: d.nLayers,
    nHeads: d.nHeads,
    nKvHeads: d.nKvHeads,
    headDim: d.headDim,
    vocabSize: config.vocabSize,
    contextLength: d.contextLength,
    ropeTheta: d.ropeTheta,
    ropeLayout: 'half',
    normEps: d.normEps,
    tiedEmbeddings: false,
    bosId: d.startId ?? 0,
    eosId: stopIds[0] ?? -1,
    stopIds: [...stopIds]
  }
}

function block (c: Json, key: string, source: string, extra: string[] = []): EncoderConfig {
  const b = object(c[key], source, key)
  const at = `${source}: ${key}`
  known(b, [...BLOCK_KEYS, ...extra], source, key)
  const config: EncoderConfig = {
    dim: int(b, 'dim', at),
    hiddenDim: int(b, 'hiddenDim', at),
    nLayers: int(b, 'nLayers', at),
    nHeads: int(b, 'nHeads', at),
    nKvHeads: int(b, 'nKvHeads', at),
    headDim: int(b, 'headDim', at),
    normEps: positive(b, 'normEps', at),
    ropeTheta: positive(b, 'ropeTheta', at),
    contextLength: int(b, 'contextLength', at),
    causal: bool(b, 'causal', at)
  }
  if (config.nHeads % config.nKvHeads !== 0) throw new CorruptCheckpointError(`${at}.nHeads ${config.nHeads} cannot be shared by ${config.nKvHeads} key/value heads (nKvHeads must divide it)`)
  if (config.headDim % 2 !== 0) throw new CorruptCheckpointError(`${at}.headDim ${config.headDim} is odd; RoPE needs pairs`)
  return config
}

function object (value: unknown, source: string, what: string): Json {
  if (value === undefined) throw new MissingFieldError(`${source}: config.json has no ${what}`)
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new CorruptCheckpointError(`${source}: ${what} is ${preview(value)}, not a JSON object`)
  return value as Json
}

function known (c: Json, keys: string[], source: string, what: string): void {
  const unknown = Object.keys(c).filter(k => !keys.includes(k))
  if (unknown.length > 0) throw new CorruptCheckpointError(`${source}: ${what} has unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map(k => preview(k, false)).join(', ')}`)
}

function int (c: Json, key: string, at: string): number {
  const v = c[key]
  if (v === undefined) throw new MissingFieldError(`${at} has no ${key}`)
  if (!Number.isSafeInteger(v) || (v as number) < 1) throw new CorruptCheckpointError(`${at}.${key} is ${preview(v)}, not a positive integer`)
  return v as number
}

function positive (c: Json, key: string, at: string): number {
  const v = c[key]
  if (v === undefined) throw new MissingFieldError(`${at} has no ${key}`)
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new CorruptCheckpointError(`${at}.${key} is ${preview(v)}, not a positive number`)
  return v
}

function bool (c: Json, key: string, at: string): boolean {
  const v = c[key]
  if (v === undefined) throw new MissingFieldError(`${at} has no ${key}`)
  if (typeof v !== 'boolean') throw new CorruptCheckpointError(`${at}.${key} is ${preview(v)}, not true or false`)
  return v
}
