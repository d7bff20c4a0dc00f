import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { loadModel, progressBar } from '@shardmesh/model/node'
import { weightsNode } from '@shardmesh/weights'
import { CliError } from '../errors.ts'

type Values = Record<string, string | boolean | undefined>

/** Where imported blocks live: `--store`, else $SHARDMESH_STORE, else ~/.cache/shardmesh/blocks. */
export function storeDir (values: Values): string {
  if (typeof values.store === 'string' && values.store !== '') return resolve(values.store)
  return process.env.SHARDMESH_STORE || join(homedir(), '.cache', 'shardmesh', 'blocks')
}

/**
 * `shardmesh import MODEL`: the embedding, each layer and the head as UnixFS files (tensors in
 * their stored dtype) plus the tokenizer and a manifest, into a blockstore-fs directory.
 * Prints the manifest CID on stdout (progress on stderr); `start --model CID` serves it.
 */
export async function importCommand (values: Values): Promise<void> {
  if (typeof values.model !== 'string' || values.model === '') throw new CliError('a model is required: shardmesh import MODEL (a GGUF, llama2.c .bin, Hugging Face folder, or http(s) URL)')
  const json = values.json === true
  const store = storeDir(values)
  const bar = json ? undefined : progressBar(process.stderr)
  const model = await loadModel(values.model, { tokenizerPath: typeof values.tokenizer === 'string' ? values.tokenizer : undefined, onProgress: bar })
  if (model.tokenizer === undefined) throw new CliError(`${model.source} has no tokenizer inside; pass --tokenizer`)
  const weights = weightsNode({ cache: store })
  await weights.start()
  try {
    const { cid, manifest } = await weights.importModel(model, {
      onProgress: e => {
        if (e.type === 'weights:import:part') bar?.({ url: model.source, receivedBytes: e.detail.doneBytes, totalBytes: e.detail.totalBytes })
      }
    })
    const dtypes = [...new Set(manifest.parts.flatMap(p => p.tensors.map(t => t.dtype)))]
    if (json) {
      process.stdout.write(JSON.stringify({ cid: cid.toString(), model: manifest.config.name, parts: manifest.parts.length, bytes: manifest.byteLength, dtypes, store }) + '\n')
    } else {
      process.stdout.write(`${cid.toString()}\n`)
      process.stderr.write(`${manifest.config.name}: ${manifest.parts.length} parts (embedding, ${manifest.config.nLayers} layers, head), ${(manifest.byteLength / 1e6).toFixed(1)} MB ${dtypes.join('/')}, in ${store}\n`)
    }
  } finally {
    await weights.stop()
  }
}
