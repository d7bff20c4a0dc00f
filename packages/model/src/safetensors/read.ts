import { open, readFile, stat } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { CorruptCheckpointError, MissingFieldError, UnsupportedArchitectureError } from '../errors.ts'
import { checkLlamaTensors } from '../gguf/shapes.ts'
import { parseHfConfig } from './hf-config.ts'
import { isIgnorableHfTensor, normalizedName } from './names.ts'
import { parseSafetensors } from './parse.ts'
import type { Checkpoint, Tensor } from '../types.ts'

/** A checkpoint read from a Hugging Face folder. */
export interface SafetensorsCheckpoint extends Checkpoint {
  /** The folder's `tokenizer.json`, when it has one (`tokenizer` itself stays undefined). */
  hfTokenizerPath?: string
}

export interface ReadSafetensorsOptions {
  signal?: AbortSignal
}

/** Largest single `read()`; files above 2 GiB are read in pieces into one buffer. */
const READ_CHUNK = 1 << 30

/**
 * Reads a Hugging Face Llama folder: `config.json` plus `model.safetensors` or a sharded
 * `model.safetensors.index.json`. Tensors get normalized names, Q/K rows stay in HF order
 * (`ropeLayout: 'half'`), and their data are views into the files' bytes.
 */
export async function readSafetensorsModel (dir: string, opts: ReadSafetensorsOptions = {}): Promise<SafetensorsCheckpoint> {
  const configPath = join(dir, 'config.json')
  const config = parseHfConfig(await readJson(configPath, 'config.json'), configPath, basename(dir))

  const tensors = new Map<string, Tensor>()
  for (const [file, names] of await weightFiles(dir)) {
    opts.signal?.throwIfAborted()
    const path = join(dir, file)
    const inFile = parseSafetensors(await readWhole(path, opts.signal), path)
    for (const wanted of names ?? []) {
      if (!inFile.has(wanted)) throw new MissingFieldError(`${path}: tensor ${wanted} listed in the index is not in this shard`)
    }
    for (const [stored, tensor] of inFile) {
      const name = normalizedName(stored)
      if (name === undefined) {
        if (isIgnorableHfTensor(stored)) continue
        throw new UnsupportedArchitectureError(`${path}: tensor ${stored} is not part of a plain Llama model`)
      }
      if (name === 'output' && config.tiedEmbeddings) continue
      if (tensors.has(name)) throw new CorruptCheckpointError(`${path}: tensor ${stored} is stored twice`)
      tensors.set(name, { ...tensor, name })
    }
  }
  checkLlamaTensors(tensors, config, dir)

  const tokenizerPath = join(dir, 'tokenizer.json')
  const hasTokenizer = await stat(tokenizerPath).then((s) => s.isFile(), () => false)
  return {
    format: 'safetensors',
    source: dir,
    config,
    tensors,
    ...(hasTokenizer ? { hfTokenizerPath: tokenizerPath } : {})
  }
}

/**
 * The weight files of `dir`, each with the tensor names the index assigns to it
 * (undefined for a single unsharded file).
 */
async function weightFiles (dir: string): Promise<Map<string, string[] | undefined>> {
  if (await stat(join(dir, 'model.safetensors')).then(() => true, () => false)) {
    return new Map([['model.safetensors', undefined]])
  }
  const indexPath = join(dir, 'model.safetensors.index.json')
  const index = await readJson(indexPath, 'model.safetensors or model.safetensors.index.json') as { weight_map?: unknown }
  const weightMap = index?.weight_map
  if (typeof weightMap !== 'object' || weightMap === null) {
    throw new CorruptCheckpointError(`${indexPath}: no weight_map object`)
  }
  const files = new Map<string, string[]>()
  for (const [name, file] of Object.entries(weightMap)) {
    if (typeof file !== 'string' || file !== basename(file) || file === '..' || file === '.') {
      throw new CorruptCheckpointError(`${indexPath}: tensor ${name} maps to ${JSON.stringify(file)}, not a file name in the folder`)
    }
    files.set(file, [...files.get(file) ?? [], name])
  }
  return files
}

async function readJson (path: string, what: string): Promise<unknown> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new MissingFieldError(`${path}: not found (the folder needs ${what})`, { cause: err })
    throw err
  }
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new CorruptCheckpointError(`${path}: not valid JSON`, { cause: err })
  }
}

/** The whole file in one Uint8Array (readFile stops at 2 GiB; shards are often larger). */
async function readWhole (path: string, signal?: AbortSignal): Promise<Uint8Array> {
  const file = await open(path, 'r').catch((err: NodeJS.ErrnoException) => {
    throw err.code === 'ENOENT' ? new MissingFieldError(`${path}: weight file not found`, { cause: err }) : err
  })
  try {
    const { size } = await file.stat()
    const bytes = new Uint8Array(size)
    for (let offset = 0; offset < size;) {
      signal?.throwIfAborted()
      const { bytesRead } = await file.read(bytes, offset, Math.min(READ_CHUNK, size - offset), offset)
      if (bytesRead === 0) throw new CorruptCheckpointError(`${path}: file shrank while being read`)
      offset += bytesRead
    }
    return bytes
  } finally {
    await file.close()
  }
}
