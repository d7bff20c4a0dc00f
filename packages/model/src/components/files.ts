import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { MissingFieldError } from '../errors.ts'
import { decodeComponentModel, encodeComponentModel } from './codec.ts'
import type { EncodeComponentModelOptions } from './codec.ts'
import type { ComponentModel } from './types.ts'

const CONFIG = 'config.json'
const WEIGHTS = 'model.safetensors'

/** Writes `config.json` and `model.safetensors` (see `encodeComponentModel`) into `dir`, creating it. */
export async function saveComponentModel (dir: string, model: ComponentModel, opts: EncodeComponentModelOptions = {}): Promise<void> {
  const files = encodeComponentModel(model, opts)
  await mkdir(dir, { recursive: true })
  await writeFile(join(dir, CONFIG), files.config)
  await writeFile(join(dir, WEIGHTS), files.safetensors)
}

/** Reads a component model folder written by `saveComponentModel`, as strictly as `decodeComponentModel`. */
export async function loadComponentModel (dir: string): Promise<ComponentModel> {
  const config = await readFile(join(dir, CONFIG), 'utf8').catch(notFound(join(dir, CONFIG)))
  const bytes = await readFile(join(dir, WEIGHTS)).catch(notFound(join(dir, WEIGHTS)))
  return decodeComponentModel({ config, safetensors: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) }, dir)
}

function notFound (path: string): (err: NodeJS.ErrnoException) => never {
  return (err) => {
    if (err.code === 'ENOENT') throw new MissingFieldError(`${path}: not found (a component model folder has ${CONFIG} and ${WEIGHTS})`, { cause: err })
    throw err
  }
}
