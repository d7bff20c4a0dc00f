import { CorruptCheckpointError, TruncatedCheckpointError, UnsupportedTensorTypeError } from '../errors.ts'
import { tensorByteLength } from '../quant.ts'
import type { Tensor } from '../types.ts'
import { DTYPE_OF, GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, VALUE_SIZE, ValueType, ggmlTypeName } from './constants.ts'

export type GgufArray =
  | Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array | Float32Array | Float64Array
  | BigUint64Array | BigInt64Array | boolean[] | string[] | GgufArray[]

/** A metadata value: 64-bit integers are bigints, numeric arrays are typed arrays. */
export type GgufValue = number | bigint | boolean | string | GgufArray

/** The structure of a GGUF file; tensors keep their GGUF names and are views into the bytes. */
export interface GgufFile {
  version: number
  metadata: Map<string, GgufValue>
  /** Shapes are ours (outermost first), i.e. the file's ne reversed. */
  tensors: Tensor[]
  alignment: number
  /** Byte offset where tensor data begins. */
  dataOffset: number
}

const TYPED_ARRAY: Record<number, { new (buffer: ArrayBuffer): GgufArray }> = {
  [ValueType.UINT8]: Uint8Array,
  [ValueType.INT8]: Int8Array,
  [ValueType.UINT16]: Uint16Array,
  [ValueType.INT16]: Int16Array,
  [ValueType.UINT32]: Uint32Array,
  [ValueType.INT32]: Int32Array,
  [ValueType.FLOAT32]: Float32Array,
  [ValueType.FLOAT64]: Float64Array,
  [ValueType.UINT64]: BigUint64Array,
  [ValueType.INT64]: BigInt64Array
}

const utf8 = new TextDecoder('utf-8', { fatal: true })
/** Arrays of arrays nest at most this deep (real files use 1 level); deeper ones would overflow the stack. */
const MAX_ARRAY_DEPTH = 16

/** The shortest decimal that is the same float32, so 1e-5 stored as f32 reads back as 1e-5. */
function f32Decimal (v: number): number {
  for (let p = 1; p < 9; p++) {
    const d = Number(v.toPrecision(p))
    if (Math.fround(d) === v) return d
  }
  return v
}

/** Reads little-endian fields; every read names its field so truncation errors can say where. */
class Cursor {
  pos = 0
  /** Arrays being read, outermost first. */
  depth = 0
  readonly bytes: Uint8Array
  readonly view: DataView
  readonly source: string

  constructor (bytes: Uint8Array, source: string) {
    this.bytes = bytes
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    this.source = source
  }

  /** Check that `n` more bytes exist without consuming them. */
  ensure (n: number, what: string): void {
    if (n > this.bytes.byteLength - this.pos) {
      throw new TruncatedCheckpointError(`${this.source}: file ends at byte ${this.bytes.byteLength} while reading ${what} (${n} bytes at offset ${this.pos})`)
    }
  }

  /** Consume `n` bytes; returns their offset. */
  take (n: number, what: string): number {
    this.ensure(n, what)
    const at = this.pos
    this.pos += n
    return at
  }

  u32 (what: string): number {
    return this.view.getUint32(this.take(4, what), true)
  }

  /** A uint64 that must fit a JS number (counts, lengths, offsets). */
  u64 (what: string): number {
    const v = this.view.getBigUint64(this.take(8, what), true)
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new CorruptCheckpointError(`${this.source}: ${what} is ${v}, too large`)
    return Number(v)
  }

  string (what: string): string {
    const n = this.u64(what)
    const at = this.take(n, what)
    try {
      return utf8.decode(this.bytes.subarray(at, at + n))
    } catch {
      throw new CorruptCheckpointError(`${this.source}: ${what} is not valid UTF-8`)
    }
  }

  value (type: number, what: string): GgufValue {
    const v = this.view
    switch (type) {
      case ValueType.UINT8: return v.getUint8(this.take(1, what))
      case ValueType.INT8: return v.getInt8(this.take(1, what))
      case ValueType.UINT16: return v.getUint16(this.take(2, what), true)
      case ValueType.INT16: return v.getInt16(this.take(2, what), true)
      case ValueType.UINT32: return v.getUint32(this.take(4, what), true)
      case ValueType.INT32: return v.getInt32(this.take(4, what), true)
      case ValueType.FLOAT32: return f32Decimal(v.getFloat32(this.take(4, what), true))
      case ValueType.FLOAT64: return v.getFloat64(this.take(8, what), true)
      case ValueType.UINT64: return v.getBigUint64(this.take(8, what), true)
      case ValueType.INT64: return v.getBigInt64(this.take(8, what), true)
      case ValueType.BOOL: {
        const b = v.getUint8(this.take(1, what))
        if (b > 1) throw new CorruptCheckpointError(`${this.source}: ${what} is a bool with byte value ${b}`)
        return b === 1
      }
      case ValueType.STRING: return this.string(what)
      case ValueType.ARRAY: {
        if (this.depth >= MAX_ARRAY_DEPTH) throw new CorruptCheckpointError(`${this.source}: ${what} nests arrays more than ${MAX_ARRAY_DEPTH} deep`)
        this.depth++
        try { return this.array(what) } finally { this.depth-- }
      }
      default: throw new CorruptCheckpointError(`${this.source}: ${what} has unknown value type ${type}`)
    }
  }

  /** Array: element type (u32), count (u64), elements. Fixed-size elements become typed arrays. */
  array (what: string): GgufArray {
    const type = this.u32(`${what} element type`)
    const n = this.u64(`${what} length`)
    const Typed = TYPED_ARRAY[type]
    if (Typed !== undefined) {
      const at = this.take(n * VALUE_SIZE[type], what)
      return new Typed(this.bytes.slice(at, at + n * VALUE_SIZE[type]).buffer) // copy: may be unaligned
    }
    // bool 1 byte, string ≥ 8 (its length), nested array ≥ 12 (type + length): refuse absurd counts up front
    const minSize = type === ValueType.BOOL ? 1 : type === ValueType.STRING ? 8 : type === ValueType.ARRAY ? 12 : 0
    if (minSize === 0) throw new CorruptCheckpointError(`${this.source}: ${what} has unknown element type ${type}`)
    this.ensure(n * minSize, what)
    const out: Array<boolean | string | GgufArray> = []
    for (let i = 0; i < n; i++) out.push(this.value(type, `${what}[${i}]`) as boolean | string | GgufArray)
    return out as GgufArray
  }
}

/** Parse a GGUF v2/v3 file: header, metadata, tensor infos; tensor data stay views of `bytes`. */
export function parseGguf (bytes: Uint8Array, source: string): GgufFile {
  const c = new Cursor(bytes, source)
  const magic = c.u32('magic')
  if (magic !== GGUF_MAGIC) {
    throw new CorruptCheckpointError(`${source}: not a GGUF file (magic 0x${magic.toString(16).padStart(8, '0')}, expected "GGUF")`)
  }
  const version = c.u32('version')
  if (version !== 2 && version !== 3) {
    const bigEndian = version === 0x02000000 || version === 0x03000000
    throw new CorruptCheckpointError(`${source}: ${bigEndian ? 'big-endian GGUF' : `GGUF version ${version}`} is not supported (little-endian versions 2 and 3 are)`)
  }
  const tensorCount = c.u64('tensor count')
  const kvCount = c.u64('metadata count')

  const metadata = new Map<string, GgufValue>()
  for (let i = 0; i < kvCount; i++) {
    const key = c.string(`metadata key #${i}`)
    if (metadata.has(key)) throw new CorruptCheckpointError(`${source}: duplicate metadata key '${key}'`)
    const type = c.u32(`metadata '${key}' type`)
    metadata.set(key, c.value(type, `metadata '${key}'`))
  }

  const alignment = metadata.get('general.alignment') ?? GGUF_DEFAULT_ALIGNMENT
  if (typeof alignment !== 'number' || !Number.isInteger(alignment) || alignment <= 0 || (alignment & (alignment - 1)) !== 0) {
    throw new CorruptCheckpointError(`${source}: general.alignment must be a power of two, got ${String(alignment)}`)
  }

  const infos: Array<{ name: string, type: number, shape: number[], offset: number }> = []
  const names = new Set<string>()
  for (let i = 0; i < tensorCount; i++) {
    const name = c.string(`tensor info #${i} name`)
    const what = `tensor info '${name}'`
    if (names.has(name)) throw new CorruptCheckpointError(`${source}: duplicate tensor '${name}'`)
    names.add(name)
    const nDims = c.u32(`${what} dimension count`)
    if (nDims < 1 || nDims > 4) throw new CorruptCheckpointError(`${source}: ${what} has ${nDims} dimensions (1 to 4 allowed)`)
    const ne: number[] = []
    for (let d = 0; d < nDims; d++) ne.push(c.u64(`${what} dimension ${d}`))
    const type = c.u32(`${what} type`)
    const offset = c.u64(`${what} offset`)
    infos.push({ name, type, shape: ne.reverse(), offset })
  }
  const dataOffset = Math.ceil(c.pos / alignment) * alignment

  const tensors = infos.map(({ name, type, shape, offset }): Tensor => {
    const dtype = DTYPE_OF.get(type)
    if (dtype === undefined) {
      throw new UnsupportedTensorTypeError(`${source}: tensor '${name}' has ggml type ${type} (${ggmlTypeName(type)}), which is not supported (F32, F16, BF16, Q8_0 and Q4_0 are)`)
    }
    if (offset % alignment !== 0) {
      throw new CorruptCheckpointError(`${source}: tensor '${name}' data offset ${offset} is not a multiple of the alignment ${alignment}`)
    }
    const start = dataOffset + offset
    const end = start + tensorByteLength(dtype, shape, `${source}: tensor '${name}'`)
    if (end > bytes.byteLength) {
      throw new TruncatedCheckpointError(`${source}: tensor '${name}' data ends at byte ${end} but the file has ${bytes.byteLength} bytes`)
    }
    return { name, dtype, shape, data: bytes.subarray(start, end) }
  })
  return { version, metadata, tensors, alignment, dataOffset }
}
