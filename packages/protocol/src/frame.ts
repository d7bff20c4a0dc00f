import { DEFAULT_MAX_FRAME_BYTES, FLAG_PARTIAL, FLAG_REPLAY, FRAME_MAGIC, FRAME_VERSION, HEADER_BYTES, MAX_RANK, SESSION_ID_BYTES } from './constants.ts'
import { InvalidFrameError } from './errors.ts'

/**
 * What a frame carries:
 * - `activations`: hidden states `(positions, dim)` from one stage to the next
 * - `tokens`: token ids `(positions)` into the first stage
 * - `sampled`: the token id the last stage sampled `(1)`, back to the head
 */
export type FrameKind = 'activations' | 'tokens' | 'sampled'
export type FrameDType = 'F32' | 'F16' | 'I32'

const KINDS: FrameKind[] = ['activations', 'tokens', 'sampled']
const DTYPES: FrameDType[] = ['F32', 'F16', 'I32']
const ELEMENT_BYTES: Record<FrameDType, number> = { F32: 4, F16: 2, I32: 4 }

export interface Frame {
  kind: FrameKind
  /** 16 bytes naming the session. */
  session: Uint8Array
  /** The head's step counter: one per forward pass of the pipeline. */
  step: number
  /** First position the payload covers. */
  position: number
  dtype: FrameDType
  /** Outermost first; the first dim is the number of positions. */
  shape: number[]
  /** Little-endian elements; a view into the frame's bytes after decoding. */
  payload: Uint8Array
  /**
   * A prompt chunk that is not the last: more positions follow, so a head stage computes it
   * without sampling and sends nothing back. @default false
   */
  partial?: boolean
  /** A position replayed from an upstream output log to rebuild a replacement stage (FLAG_REPLAY). @default false */
  replay?: boolean
}

/**
 * Layout (little-endian):
 *   0 u16 magic "SM" · 2 u8 version · 3 u8 kind · 4 u8[16] session · 20 u32 step ·
 *   24 u32 position · 28 u8 dtype · 29 u8 rank · 30 u16 flags (bit 0 partial, bit 1 replay) · 32 u32 payload bytes ·
 *   36 u32[rank] shape · payload
 */
export function encodeFrame (f: Frame): Uint8Array {
  validateShape(f.shape, f.dtype, f.payload.byteLength)
  if (f.session.byteLength !== SESSION_ID_BYTES) throw new InvalidFrameError('BAD_LENGTH', `session id must be ${SESSION_ID_BYTES} bytes, got ${f.session.byteLength}`)
  const headerBytes = HEADER_BYTES + 4 * f.shape.length
  const out = new Uint8Array(headerBytes + f.payload.byteLength)
  const view = new DataView(out.buffer)
  view.setUint16(0, FRAME_MAGIC, true)
  view.setUint8(2, FRAME_VERSION)
  view.setUint8(3, KINDS.indexOf(f.kind))
  out.set(f.session, 4)
  view.setUint32(20, f.step, true)
  view.setUint32(24, f.position, true)
  view.setUint8(28, DTYPES.indexOf(f.dtype))
  view.setUint8(29, f.shape.length)
  view.setUint16(30, (f.partial === true ? FLAG_PARTIAL : 0) | (f.replay === true ? FLAG_REPLAY : 0), true)
  view.setUint32(32, f.payload.byteLength, true)
  f.shape.forEach((d, i) => view.setUint32(HEADER_BYTES + 4 * i, d, true))
  out.set(f.payload, headerBytes)
  return out
}

export interface DecodeFrameOptions {
  /** Refuse frames larger than this. @default DEFAULT_MAX_FRAME_BYTES */
  maxBytes?: number
}

/** Parse and check a frame; any defect throws InvalidFrameError with a code. */
export function decodeFrame (bytes: Uint8Array, options: DecodeFrameOptions = {}): Frame {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_FRAME_BYTES
  if (bytes.byteLength > maxBytes) throw new InvalidFrameError('TOO_LARGE', `frame of ${bytes.byteLength} bytes exceeds the limit of ${maxBytes}`)
  if (bytes.byteLength < HEADER_BYTES) throw new InvalidFrameError('TRUNCATED', `frame of ${bytes.byteLength} bytes is shorter than the ${HEADER_BYTES}-byte header`)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (view.getUint16(0, true) !== FRAME_MAGIC) throw new InvalidFrameError('BAD_MAGIC', 'not a shardmesh frame (bad magic)')
  const version = view.getUint8(2)
  if (version !== FRAME_VERSION) throw new InvalidFrameError('BAD_VERSION', `frame version ${version}; this peer speaks version ${FRAME_VERSION}`)
  const kind = KINDS[view.getUint8(3)]
  if (kind === undefined) throw new InvalidFrameError('BAD_KIND', `unknown frame kind ${view.getUint8(3)}`)
  const dtype = DTYPES[view.getUint8(28)]
  if (dtype === undefined) throw new InvalidFrameError('BAD_DTYPE', `unknown dtype ${view.getUint8(28)}`)
  const flags = view.getUint16(30, true)
  if ((flags & ~(FLAG_PARTIAL | FLAG_REPLAY)) !== 0) throw new InvalidFrameError('BAD_FLAGS', `unknown frame flags 0x${flags.toString(16)}`)
  const rank = view.getUint8(29)
  if (rank === 0 || rank > MAX_RANK) throw new InvalidFrameError('BAD_SHAPE', `rank ${rank} is outside 1..${MAX_RANK}`)
  const headerBytes = HEADER_BYTES + 4 * rank
  if (bytes.byteLength < headerBytes) throw new InvalidFrameError('TRUNCATED', `frame of ${bytes.byteLength} bytes ends inside its shape`)
  const shape = Array.from({ length: rank }, (_, i) => view.getUint32(HEADER_BYTES + 4 * i, true))
  const payloadBytes = view.getUint32(32, true)
  if (bytes.byteLength !== headerBytes + payloadBytes) {
    throw new InvalidFrameError(bytes.byteLength < headerBytes + payloadBytes ? 'TRUNCATED' : 'BAD_LENGTH', `frame says ${payloadBytes} payload bytes, carries ${bytes.byteLength - headerBytes}`)
  }
  validateShape(shape, dtype, payloadBytes)
  return {
    kind,
    session: bytes.subarray(4, 4 + SESSION_ID_BYTES),
    step: view.getUint32(20, true),
    position: view.getUint32(24, true),
    dtype,
    shape,
    payload: bytes.subarray(headerBytes),
    partial: (flags & FLAG_PARTIAL) !== 0,
    replay: (flags & FLAG_REPLAY) !== 0
  }
}

function validateShape (shape: number[], dtype: FrameDType, payloadBytes: number): void {
  if (shape.length === 0 || shape.length > MAX_RANK) throw new InvalidFrameError('BAD_SHAPE', `rank ${shape.length} is outside 1..${MAX_RANK}`)
  let elements = 1
  for (const d of shape) {
    if (!Number.isInteger(d) || d <= 0) throw new InvalidFrameError('BAD_SHAPE', `shape [${shape.join(', ')}] has a non-positive dimension`)
    elements *= d
  }
  if (elements * ELEMENT_BYTES[dtype] !== payloadBytes) {
    throw new InvalidFrameError('BAD_LENGTH', `shape [${shape.join(', ')}] of ${dtype} needs ${elements * ELEMENT_BYTES[dtype]} bytes, the payload has ${payloadBytes}`)
  }
}
