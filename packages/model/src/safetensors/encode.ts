import { UnsupportedTensorTypeError } from '../errors.ts'
import { SAFETENSORS_ELEMENT_BYTES, isSafetensorsDType } from './dtypes.ts'
import type { Tensor } from '../types.ts'

/**
 * One `.safetensors` file in memory, tensors under their own names. Wider dtypes go first and
 * the header is space-padded to 8 bytes, so every tensor starts aligned to its element size
 * (as `writeSafetensorsModel` writes its shards). For small models; large ones go through
 * `writeSafetensorsModel`, which streams.
 */
export function encodeSafetensors (tensors: Iterable<Tensor>, metadata: Record<string, string> = { format: 'pt' }): Uint8Array {
  const list = [...tensors]
  for (const t of list) {
    if (!isSafetensorsDType(t.dtype)) throw new UnsupportedTensorTypeError(`tensor ${t.name} is ${t.dtype}; safetensors takes F32, F16 or BF16 only`)
  }
  const width = (t: Tensor): number => SAFETENSORS_ELEMENT_BYTES[t.dtype as keyof typeof SAFETENSORS_ELEMENT_BYTES]
  const ordered = list.map((t, i) => ({ t, i })).sort((a, b) => width(b.t) - width(a.t) || a.i - b.i).map(({ t }) => t)
  const header: Record<string, unknown> = { __metadata__: metadata }
  let offset = 0
  for (const t of ordered) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] }
    offset += t.data.byteLength
  }
  const json = new TextEncoder().encode(JSON.stringify(header))
  const headerLength = json.byteLength + (8 - json.byteLength % 8) % 8
  const out = new Uint8Array(8 + headerLength + offset)
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength), true)
  out.fill(0x20, 8, 8 + headerLength)
  out.set(json, 8)
  let at = 8 + headerLength
  for (const t of ordered) {
    out.set(t.data, at)
    at += t.data.byteLength
  }
  return out
}
