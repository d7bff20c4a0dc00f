import { mkdir, open, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { UnsupportedTensorTypeError } from '../errors.ts'
import { checkLlamaTensors, llamaShapes } from '../gguf/shapes.ts'
import { SAFETENSORS_ELEMENT_BYTES, isSafetensorsDType } from './dtypes.ts'
import { hfConfigJson } from './hf-config.ts'
import { hfName } from './names.ts'
import { interleavedToHalfRows } from '../rope-permute.ts'
import type { SafetensorsDType } from './dtypes.ts'
import type { FileHandle } from 'node:fs/promises'
import type { Checkpoint, Tensor } from '../types.ts'

export interface WriteSafetensorsOptions {
  /**
   * Tensor bytes per file before a new shard starts (a larger single tensor gets a shard
   * of its own). Everything fitting in one file gives `model.safetensors`.
   * @default 5e9 (Hugging Face's "5GB")
   */
  maxShardBytes?: number
  signal?: AbortSignal
}

const DEFAULT_MAX_SHARD_BYTES = 5e9
/** Largest single write(); one call cannot pass 2 GiB and big embeddings do. */
const WRITE_CHUNK = 1 << 30
const SINGLE_FILE = 'model.safetensors'
const INDEX_FILE = 'model.safetensors.index.json'

interface Entry { name: string, tensor: Tensor & { dtype: SafetensorsDType } }

/**
 * Writes `ckpt` as a Hugging Face Llama folder (`config.json` plus one safetensors file or
 * shards and an index). Interleaved-RoPE checkpoints get their Q/K rows put back in HF order.
 * The tokenizer is not written.
 */
export async function writeSafetensorsModel (ckpt: Checkpoint, dir: string, opts: WriteSafetensorsOptions = {}): Promise<void> {
  const { config } = ckpt
  const maxShardBytes = opts.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES
  if (!(maxShardBytes > 0)) throw new RangeError(`maxShardBytes must be positive, got ${maxShardBytes}`)
  checkLlamaTensors(ckpt.tensors, config, ckpt.source)

  const entries: Entry[] = []
  for (const name of llamaShapes(config).keys()) {
    let tensor = ckpt.tensors.get(name)!
    if (!isSafetensorsDType(tensor.dtype)) {
      throw new UnsupportedTensorTypeError(`${ckpt.source}: tensor ${name} is ${tensor.dtype}; safetensors output takes F32, F16 or BF16 only (dequantize first)`)
    }
    if (config.ropeLayout === 'interleaved' && /\.w[qk]$/.test(name)) {
      tensor = interleavedToHalfRows(tensor, name.endsWith('wq') ? config.nHeads : config.nKvHeads)
    }
    entries.push({ name: hfName(name)!, tensor: tensor as Entry['tensor'] })
  }

  await mkdir(dir, { recursive: true })
  const embeddingDType = ckpt.tensors.get('tok_embeddings')!.dtype as SafetensorsDType
  const hfConfig = hfConfigJson({ ...config, ropeLayout: 'half' }, embeddingDType)
  await writeFile(join(dir, 'config.json'), JSON.stringify(hfConfig, null, 2) + '\n')

  const shards = packShards(entries, maxShardBytes)
  if (shards.length === 1) {
    await rm(join(dir, INDEX_FILE), { force: true })
    await writeShard(join(dir, SINGLE_FILE), shards[0], opts.signal)
    return
  }
  await rm(join(dir, SINGLE_FILE), { force: true })
  const weightMap: Record<string, string> = {}
  let totalSize = 0
  for (const [i, shard] of shards.entries()) {
    const file = `model-${String(i + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`
    await writeShard(join(dir, file), shard, opts.signal)
    for (const { name, tensor } of shard) {
      weightMap[name] = file
      totalSize += tensor.data.byteLength
    }
  }
  const index = { metadata: { total_size: totalSize }, weight_map: weightMap }
  await writeFile(join(dir, INDEX_FILE), JSON.stringify(index, null, 2) + '\n')
}

/** Greedy split in file order: a shard closes when the next tensor would push it past the limit. */
function packShards (entries: Entry[], maxShardBytes: number): Entry[][] {
  const shards: Entry[][] = [[]]
  let bytes = 0
  for (const entry of entries) {
    const size = entry.tensor.data.byteLength
    if (bytes > 0 && bytes + size > maxShardBytes) {
      shards.push([])
      bytes = 0
    }
    shards[shards.length - 1].push(entry)
    bytes += size
  }
  return shards
}

/**
 * One safetensors file. Wider dtypes go first and the header is space-padded to 8 bytes,
 * so every tensor starts aligned to its element size; data are contiguous, as the format requires.
 */
async function writeShard (path: string, entries: Entry[], signal?: AbortSignal): Promise<void> {
  const ordered = [...entries].sort((a, b) => SAFETENSORS_ELEMENT_BYTES[b.tensor.dtype] - SAFETENSORS_ELEMENT_BYTES[a.tensor.dtype])
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } }
  let offset = 0
  for (const { name, tensor } of ordered) {
    header[name] = { dtype: tensor.dtype, shape: tensor.shape, data_offsets: [offset, offset + tensor.data.byteLength] }
    offset += tensor.data.byteLength
  }
  const json = new TextEncoder().encode(JSON.stringify(header))
  const headerBytes = new Uint8Array(json.byteLength + (8 - json.byteLength % 8) % 8).fill(0x20)
  headerBytes.set(json)
  const prefix = new Uint8Array(8)
  new DataView(prefix.buffer).setBigUint64(0, BigInt(headerBytes.byteLength), true)

  const file = await open(path, 'w')
  try {
    await writeAll(file, prefix)
    await writeAll(file, headerBytes)
    for (const { tensor } of ordered) {
      signal?.throwIfAborted()
      await writeAll(file, tensor.data)
    }
  } finally {
    await file.close()
  }
}

async function writeAll (file: FileHandle, bytes: Uint8Array): Promise<void> {
  for (let offset = 0; offset < bytes.byteLength;) {
    const { bytesWritten } = await file.write(bytes, offset, Math.min(WRITE_CHUNK, bytes.byteLength - offset))
    offset += bytesWritten
  }
}
