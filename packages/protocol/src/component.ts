import { checkPeerRef, checkRoute } from './control.ts'
import { DEFAULT_MAX_FRAME_BYTES } from './constants.ts'
import { InvalidComponentMessageError, InvalidControlMessageError } from './errors.ts'
import type { PeerRef, RouteHop } from './control.ts'

const MAGIC_0 = 0x53 // 'S'
const MAGIC_1 = 0x50 // 'P'
export const COMPONENT_VERSION = 1
/** Magic, version, a reserved byte, the header's length (u32 LE). */
const PREFIX_BYTES = 8
const MAX_HEADER_BYTES = 64 * 1024
const ID_HEX = /^[0-9a-f]{32}$/

/**
 * Messages of the component protocol (models of several parts, strategy `component`):
 * - `pass` (head → a part's first stage, then stage → next stage): run `route[hop]` of part
 *   `component` on `input` — `tokens` (n ids, I32), `pixels` (n images' values, F32) or
 *   `hidden` (n rows, F32) — and forward the output to `route[hop + 1]`, or from the last hop
 *   send the `result` to `head`. Stateless: one pass per request and part.
 * - `result` (last stage → head): `embedding` (a tower's pooled projection, one row) or
 *   `hidden` (an encoder's memory, n rows).
 * - `memory` (head → each decoder stage): the encoder memory of decoder session `id`, kept
 *   until the session closes or expires; answered with `memory-ok` or `error`.
 * - `error` (→ head): `id`'s pass or memory failed; `blame` names a peer at fault when it is
 *   not the sender (an unreachable next hop).
 * Wire: 'S' 'P', version, 0, u32 LE header length, header JSON (UTF-8, padded with spaces to a
 * multiple of 4 bytes), then the payload (little-endian I32 or F32 values).
 */
export type ComponentMessage =
  | { type: 'pass', id: string, model: string, component: string, route: RouteHop[], hop: number, head: PeerRef, input: 'tokens', n: number, data: Int32Array }
  | { type: 'pass', id: string, model: string, component: string, route: RouteHop[], hop: number, head: PeerRef, input: 'pixels' | 'hidden', n: number, data: Float32Array }
  | { type: 'result', id: string, kind: 'embedding' | 'hidden', n: number, data: Float32Array }
  | { type: 'memory', id: string, n: number, data: Float32Array }
  | { type: 'memory-ok', id: string }
  | { type: 'error', id: string, code: string, message: string, blame?: string }

function fail (what: string): never {
  throw new InvalidComponentMessageError(`invalid component message: ${what}`)
}

function str (v: unknown, what: string, max: number): string {
  if (typeof v !== 'string' || v.length > max) fail(`${what} must be a string of at most ${max} characters`)
  return v
}

function int (v: unknown, what: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) fail(`${what} must be a whole number in [${min}, ${max}]`)
  return v
}

/** Header fields of `m` (everything but the payload). */
function header (m: ComponentMessage): Record<string, unknown> {
  const { data: _data, ...rest } = m as ComponentMessage & { data?: unknown }
  return rest
}

/** The header and payload of a checked message, as what `decodeComponent` returns. */
function check (h: Record<string, unknown>, payload: Uint8Array): ComponentMessage {
  const id = str(h.id, 'id', 32)
  if (!ID_HEX.test(id)) fail('id must be 32 lowercase hex digits')
  const floats = (n: number): Float32Array => {
    if (payload.byteLength === 0 || payload.byteLength % (4 * n) !== 0) fail(`the payload of ${payload.byteLength} bytes is not ${n} rows of f32 values`)
    const data = new Float32Array(payload.slice().buffer)
    if (!data.every(Number.isFinite)) fail('the payload holds a NaN or infinite value')
    return data
  }
  const noPayload = (): void => { if (payload.byteLength !== 0) fail(`a ${String(h.type)} message has no payload`) }
  switch (h.type) {
    case 'pass': {
      let route: RouteHop[]
      let head: PeerRef
      try {
        route = checkRoute(h.route)
        head = checkPeerRef(h.head, 'head')
      } catch (err) {
        if (err instanceof InvalidControlMessageError) fail(err.message)
        throw err
      }
      const hop = int(h.hop, 'hop', 0, route.length - 1)
      const n = int(h.n, 'n', 1, 1 << 20)
      const base = { type: 'pass' as const, id, model: str(h.model, 'model', 256), component: str(h.component, 'component', 64), route, hop, head, n }
      if (h.input === 'tokens') {
        if (payload.byteLength !== 4 * n) fail(`${n} tokens need ${4 * n} payload bytes, not ${payload.byteLength}`)
        return { ...base, input: 'tokens', data: new Int32Array(payload.slice().buffer) }
      }
      if (h.input !== 'pixels' && h.input !== 'hidden') fail('input must be tokens, pixels or hidden')
      return { ...base, input: h.input, data: floats(n) }
    }
    case 'result':
      if (h.kind !== 'embedding' && h.kind !== 'hidden') fail('kind must be embedding or hidden')
      { const n = int(h.n, 'n', 1, 1 << 20); return { type: 'result', id, kind: h.kind, n, data: floats(n) } }
    case 'memory':
      { const n = int(h.n, 'n', 1, 1 << 20); return { type: 'memory', id, n, data: floats(n) } }
    case 'memory-ok':
      noPayload()
      return { type: 'memory-ok', id }
    case 'error': {
      noPayload()
      const e = { type: 'error' as const, id, code: str(h.code, 'code', 64), message: str(h.message, 'message', 2048) }
      return h.blame === undefined ? e : { ...e, blame: str(h.blame, 'blame', 128) }
    }
    default:
      fail(`unknown type ${typeof h.type === 'string' ? JSON.stringify(h.type.slice(0, 64)) : typeof h.type}`)
  }
}

export function encodeComponent (m: ComponentMessage): Uint8Array {
  const data = 'data' in m ? m.data : undefined
  const payload = data === undefined ? new Uint8Array(0) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
  check(header(m), payload) // what this sends, the other side accepts
  let json = new TextEncoder().encode(JSON.stringify(header(m)))
  const padded = Math.ceil(json.byteLength / 4) * 4
  if (padded !== json.byteLength) json = new TextEncoder().encode(JSON.stringify(header(m)) + ' '.repeat(padded - json.byteLength))
  const out = new Uint8Array(PREFIX_BYTES + json.byteLength + payload.byteLength)
  out.set([MAGIC_0, MAGIC_1, COMPONENT_VERSION, 0])
  new DataView(out.buffer).setUint32(4, json.byteLength, true)
  out.set(json, PREFIX_BYTES)
  out.set(payload, PREFIX_BYTES + json.byteLength)
  return out
}

/** Parse and check a component message; anything malformed throws InvalidComponentMessageError. */
export function decodeComponent (bytes: Uint8Array, options: { maxBytes?: number } = {}): ComponentMessage {
  const max = options.maxBytes ?? DEFAULT_MAX_FRAME_BYTES
  if (bytes.byteLength > max) fail(`${bytes.byteLength} bytes exceed ${max}`)
  if (bytes.byteLength < PREFIX_BYTES) fail(`${bytes.byteLength} bytes are shorter than the ${PREFIX_BYTES}-byte prefix`)
  if (bytes[0] !== MAGIC_0 || bytes[1] !== MAGIC_1) fail('bad magic')
  if (bytes[2] !== COMPONENT_VERSION) fail(`version ${bytes[2]}; this peer speaks ${COMPONENT_VERSION}`)
  const length = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(4, true)
  if (length > MAX_HEADER_BYTES || length > bytes.byteLength - PREFIX_BYTES || length % 4 !== 0) fail(`header length ${length} does not fit the message`)
  let h: unknown
  try {
    h = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(PREFIX_BYTES, PREFIX_BYTES + length)))
  } catch {
    fail('the header is not UTF-8 JSON')
  }
  if (typeof h !== 'object' || h === null || Array.isArray(h)) fail('the header is not an object')
  return check(h as Record<string, unknown>, bytes.subarray(PREFIX_BYTES + length))
}
