import { CorruptCheckpointError } from '../errors.ts'
import type { Tensor } from '../types.ts'
import { GGML_TYPE, GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC } from './constants.ts'

type NumberType = 'u8' | 'i8' | 'u16' | 'i16' | 'u32' | 'i32' | 'f32' | 'f64' | 'u64' | 'i64'

/** One metadata entry to write; strings may be given as raw UTF-8 bytes. Nested arrays are not written. */
export type GgufEntry =
  | { key: string, type: NumberType, value: number | bigint }
  | { key: string, type: 'bool', value: boolean }
  | { key: string, type: 'string', value: string | Uint8Array }
  | { key: string, type: `${NumberType}[]`, value: ArrayLike<number | bigint> }
  | { key: string, type: 'bool[]', value: ArrayLike<boolean> }
  | { key: string, type: 'string[]', value: ArrayLike<string | Uint8Array> }

const TYPE_ID: Record<NumberType | 'bool' | 'string', number> = {
  u8: 0, i8: 1, u16: 2, i16: 3, u32: 4, i32: 5, f32: 6, bool: 7, string: 8, u64: 10, i64: 11, f64: 12
}
const ARRAY_ID = 9
const SIZE: Record<NumberType | 'bool', number> = { u8: 1, i8: 1, u16: 2, i16: 2, u32: 4, i32: 4, f32: 4, f64: 8, u64: 8, i64: 8, bool: 1 }

const utf8 = new TextEncoder()
const align = (n: number, a: number): number => Math.ceil(n / a) * a

/** A growable little-endian byte buffer. */
class ByteWriter {
  buf = new Uint8Array(1 << 16)
  view = new DataView(this.buf.buffer)
  pos = 0

  private reserve (n: number): number {
    if (this.pos + n > this.buf.byteLength) {
      const grown = new Uint8Array(Math.max(this.buf.byteLength * 2, this.pos + n))
      grown.set(this.buf)
      this.buf = grown
      this.view = new DataView(grown.buffer)
    }
    const at = this.pos
    this.pos += n
    return at
  }

  u32 (v: number): void { this.scalar('u32', v) }
  u64 (v: number): void { this.scalar('u64', v) }

  bytes (b: Uint8Array): void {
    const at = this.reserve(b.byteLength) // before reading this.buf: growing replaces it
    this.buf.set(b, at)
  }

  string (s: string | Uint8Array): void {
    const b = typeof s === 'string' ? utf8.encode(s) : s
    this.u64(b.byteLength)
    this.bytes(b)
  }

  scalar (type: NumberType | 'bool' | 'string', v: number | bigint | boolean | string | Uint8Array): void {
    if (type === 'string') return this.string(v as string | Uint8Array)
    const at = this.reserve(SIZE[type])
    const d = this.view // after reserve: growing replaces the view
    switch (type) {
      case 'u8': d.setUint8(at, Number(v)); break
      case 'i8': d.setInt8(at, Number(v)); break
      case 'u16': d.setUint16(at, Number(v), true); break
      case 'i16': d.setInt16(at, Number(v), true); break
      case 'u32': d.setUint32(at, Number(v), true); break
      case 'i32': d.setInt32(at, Number(v), true); break
      case 'f32': d.setFloat32(at, Number(v), true); break
      case 'f64': d.setFloat64(at, Number(v), true); break
      case 'u64': d.setBigUint64(at, BigInt(v as number | bigint), true); break
      case 'i64': d.setBigInt64(at, BigInt(v as number | bigint), true); break
      case 'bool': d.setUint8(at, v === true ? 1 : 0); break
    }
  }
}

/**
 * Serialize a GGUF v3 file: `entries` in order, then `tensors` (GGUF names, our outermost-first
 * shapes) with their data aligned to `general.alignment` when an entry sets it, else 32.
 */
export function encodeGguf (entries: GgufEntry[], tensors: Tensor[]): Uint8Array {
  const alignEntry = entries.find((e) => e.key === 'general.alignment')
  const alignment = alignEntry === undefined ? GGUF_DEFAULT_ALIGNMENT : Number(alignEntry.value)
  const w = new ByteWriter()
  w.u32(GGUF_MAGIC)
  w.u32(3)
  w.u64(tensors.length)
  w.u64(entries.length)
  for (const e of entries) {
    w.string(e.key)
    if (e.type.endsWith('[]')) {
      const type = e.type.slice(0, -2) as NumberType | 'bool' | 'string'
      const items = e.value as ArrayLike<number | bigint | boolean | string | Uint8Array>
      w.u32(ARRAY_ID)
      w.u32(TYPE_ID[type])
      w.u64(items.length)
      for (let i = 0; i < items.length; i++) w.scalar(type, items[i])
    } else {
      const type = e.type as NumberType | 'bool' | 'string'
      w.u32(TYPE_ID[type])
      w.scalar(type, e.value as number | bigint | boolean | string | Uint8Array)
    }
  }
  const offsets: number[] = []
  let size = 0
  for (const t of tensors) {
    offsets.push(size)
    size = align(size + t.data.byteLength, alignment)
  }
  tensors.forEach((t, i) => {
    if (t.shape.length < 1 || t.shape.length > 4) throw new CorruptCheckpointError(`tensor ${t.name}: GGUF allows 1 to 4 dimensions, got ${t.shape.length}`)
    w.string(t.name)
    w.u32(t.shape.length)
    for (const d of [...t.shape].reverse()) w.u64(d) // ggml order: innermost first
    w.u32(GGML_TYPE[t.dtype])
    w.u64(offsets[i])
  })
  const dataOffset = align(w.pos, alignment)
  const out = new Uint8Array(dataOffset + size)
  out.set(w.buf.subarray(0, w.pos))
  tensors.forEach((t, i) => out.set(t.data, dataOffset + offsets[i]))
  return out
}
