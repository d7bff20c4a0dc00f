import { CorruptCheckpointError, TruncatedCheckpointError, UnsupportedTensorTypeError } from '../errors.ts'
import { SAFETENSORS_ELEMENT_BYTES, isSafetensorsDType } from './dtypes.ts'
import type { Tensor } from '../types.ts'
import { preview } from '../util.ts'

/** One entry of a safetensors JSON header. */
interface HeaderEntry {
  dtype: string
  shape: number[]
  /** [begin, end) relative to the first byte after the header. */
  data_offsets: [number, number]
}

/**
 * Parses one `.safetensors` file: an 8-byte little-endian header length, a JSON header
 * `{ name: { dtype, shape, data_offsets }, __metadata__? }`, then the tensor bytes.
 * Tensor `data` are zero-copy views into `bytes`; names are kept as stored.
 */
export function parseSafetensors (bytes: Uint8Array, source: string): Map<string, Tensor> {
  if (bytes.byteLength < 8) {
    throw new TruncatedCheckpointError(`${source}: ${bytes.byteLength} bytes is too short for a safetensors header`)
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const headerLength = view.getBigUint64(0, true)
  if (headerLength > BigInt(bytes.byteLength - 8)) {
    throw new TruncatedCheckpointError(`${source}: header of ${headerLength} bytes runs past the end of the ${bytes.byteLength}-byte file`)
  }
  const dataStart = 8 + Number(headerLength)
  const dataLength = bytes.byteLength - dataStart
  const header = parseHeader(bytes.subarray(8, dataStart), source)

  const tensors = new Map<string, Tensor>()
  const spans: Array<{ name: string, begin: number, end: number }> = []
  for (const [name, raw] of Object.entries(header)) {
    if (name === '__metadata__') continue
    const entry = checkEntry(name, raw, source)
    const [begin, end] = entry.data_offsets
    if (end > dataLength) {
      throw new TruncatedCheckpointError(`${source}: tensor ${name} ends at byte ${end} of a ${dataLength}-byte data section`)
    }
    if (!isSafetensorsDType(entry.dtype)) {
      throw new UnsupportedTensorTypeError(`${source}: tensor ${name} has dtype ${entry.dtype}; only F32, F16 and BF16 are supported`)
    }
    const expected = entry.shape.reduce((a, b) => a * b, 1) * SAFETENSORS_ELEMENT_BYTES[entry.dtype]
    if (end - begin !== expected) {
      throw new CorruptCheckpointError(`${source}: tensor ${name} (${entry.dtype} [${entry.shape.join(', ')}]) needs ${expected} bytes but its offsets span ${end - begin}`)
    }
    spans.push({ name, begin, end })
    tensors.set(name, { name, dtype: entry.dtype, shape: entry.shape, data: bytes.subarray(dataStart + begin, dataStart + end) })
  }
  spans.sort((a, b) => a.begin - b.begin)
  for (let i = 1; i < spans.length; i++) {
    if (spans[i].begin < spans[i - 1].end) {
      throw new CorruptCheckpointError(`${source}: tensors ${spans[i - 1].name} and ${spans[i].name} overlap`)
    }
  }
  return tensors
}

function parseHeader (bytes: Uint8Array, source: string): Record<string, unknown> {
  let header: unknown
  try {
    header = JSON.parse(new TextDecoder().decode(bytes))
  } catch (err) {
    throw new CorruptCheckpointError(`${source}: safetensors header is not valid JSON`, { cause: err })
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new CorruptCheckpointError(`${source}: safetensors header is not a JSON object`)
  }
  return header as Record<string, unknown>
}

function checkEntry (name: string, raw: unknown, source: string): HeaderEntry {
  const entry = raw as Partial<HeaderEntry> | null
  const isCount = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0
  if (
    typeof entry !== 'object' || entry === null || typeof entry.dtype !== 'string' ||
    !Array.isArray(entry.shape) || !entry.shape.every(isCount) ||
    !Array.isArray(entry.data_offsets) || entry.data_offsets.length !== 2 || !entry.data_offsets.every(isCount) ||
    entry.data_offsets[0] > entry.data_offsets[1]
  ) {
    throw new CorruptCheckpointError(`${source}: malformed header entry for tensor ${preview(name, false)}: ${preview(raw)}`)
  }
  return entry as HeaderEntry
}
