import { open, readFile, stat } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { CorruptCheckpointError, MissingFieldError } from './errors.ts'
import { fetchModel } from './fetch.ts'
import type { FetchProgress } from './fetch.ts'
import { readGguf } from './gguf/read.ts'
import { readLlama2c } from './llama2c.ts'
import { readSafetensorsModel } from './safetensors/read.ts'
import { readHfTokenizer, readLlama2cTokenizer } from './tokenizer/index.ts'
import type { Checkpoint, TokenizerSpec } from './types.ts'

export interface LoadModelOptions {
  /** A tokenizer file for checkpoints without one: llama2.c `tok*.bin`, `tokenizer.json`, or a GGUF. */
  tokenizerPath?: string
  /** Where http(s) models are cached. @default $SHARDMESH_CACHE or ~/.cache/shardmesh/models */
  cacheDir?: string
  onProgress?: (e: FetchProgress) => void
  signal?: AbortSignal
}

const GGUF_MAGIC = 'GGUF'

async function magic (path: string): Promise<string> {
  const fh = await open(path, 'r')
  try {
    const buf = Buffer.alloc(4)
    await fh.read(buf, 0, 4, 0)
    return buf.toString('latin1')
  } finally {
    await fh.close()
  }
}

async function readBytes (path: string): Promise<Uint8Array> {
  const buf = await readFile(path)
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength)
}

/**
 * Load a checkpoint by path or URL, whatever its format: a GGUF file, a llama2.c `.bin`, a
 * Hugging Face folder (or one of its `.safetensors` / `config.json` files), or an http(s)
 * URL of a single-file model (downloaded once into the cache).
 */
export async function loadModel (location: string, opts: LoadModelOptions = {}): Promise<Checkpoint> {
  let path = location
  if (/^https?:\/\//i.test(location)) {
    path = await fetchModel(location, { cacheDir: opts.cacheDir, signal: opts.signal, onProgress: opts.onProgress })
  }
  const info = await stat(path).catch(() => { throw new MissingFieldError(`model ${location} does not exist`) })
  let ckpt: Checkpoint
  let hfTokenizer: string | undefined
  if (info.isDirectory() || /\.(safetensors|json)$/i.test(path)) {
    const st = await readSafetensorsModel(info.isDirectory() ? path : dirname(path), { signal: opts.signal })
    hfTokenizer = st.hfTokenizerPath
    ckpt = st
  } else if (await magic(path) === GGUF_MAGIC) {
    ckpt = readGguf(await readBytes(path), path)
  } else {
    ckpt = readLlama2c(await readBytes(path), path)
    // llama2.c keeps the tokenizer beside the model as tokenizer.bin
    if (opts.tokenizerPath === undefined) {
      const beside = join(dirname(path), 'tokenizer.bin')
      if (await stat(beside).then(s => s.isFile(), () => false)) opts = { ...opts, tokenizerPath: beside }
    }
  }
  const tokenizerPath = opts.tokenizerPath ?? hfTokenizer
  if (tokenizerPath !== undefined) ckpt.tokenizer = await loadTokenizer(tokenizerPath, ckpt)
  const pieces = ckpt.tokenizer?.pieces.length ?? 0
  if (pieces > ckpt.config.vocabSize) {
    // an embedding table may be padded beyond the tokenizer, never the other way round
    throw new CorruptCheckpointError(`tokenizer ${tokenizerPath ?? location} has ${pieces} pieces, more than the ${ckpt.config.vocabSize} rows of ${location}'s embedding table`)
  }
  return ckpt
}

/** Read a standalone tokenizer file for `ckpt`, choosing the format by content. */
export async function loadTokenizer (path: string, ckpt: Pick<Checkpoint, 'config'>): Promise<TokenizerSpec> {
  const bytes = await readBytes(path).catch(() => { throw new MissingFieldError(`tokenizer ${path} does not exist`) })
  let spec: TokenizerSpec | undefined
  if (new TextDecoder().decode(bytes.subarray(0, 4)) === GGUF_MAGIC) {
    spec = readGguf(bytes, path).tokenizer
    if (spec === undefined) throw new MissingFieldError(`${path}: the GGUF holds no tokenizer`)
  } else if (/\.json$/i.test(path) || basename(path) === 'tokenizer.json') {
    spec = readHfTokenizer(bytes, path)
  } else {
    spec = readLlama2cTokenizer(bytes, ckpt.config.vocabSize, path)
  }
  return spec
}
