import { InvalidFrameError } from './errors.ts'
import { halfTable, toHalf } from './f16.ts'
import type { Frame, FrameDType } from './frame.ts'

/** Little-endian element view of a payload, copying only when the bytes are unaligned. */
function aligned (payload: Uint8Array, width: number): ArrayBuffer {
  if (payload.byteOffset % width === 0 && payload.buffer instanceof ArrayBuffer) return payload.buffer
  return payload.slice().buffer
}

function offset (payload: Uint8Array, width: number): number {
  return payload.byteOffset % width === 0 && payload.buffer instanceof ArrayBuffer ? payload.byteOffset : 0
}

/** Hidden states `(positions, dim)` as a payload of `dtype` (F16 rounds). */
export function activationPayload (hidden: Float32Array, dtype: Extract<FrameDType, 'F32' | 'F16'>): Uint8Array {
  if (dtype === 'F32') return new Uint8Array(hidden.buffer, hidden.byteOffset, hidden.byteLength)
  const half = new Uint16Array(hidden.length)
  for (let i = 0; i < hidden.length; i++) half[i] = toHalf(hidden[i])
  return new Uint8Array(half.buffer)
}

/**
 * The hidden states of an activations frame as float32 `(positions, dim)`, checked against
 * the model's `dim` and for NaN/∞ (a faulty or lying peer must not poison a KV cache).
 */
export function frameActivations (frame: Frame, dim: number): Float32Array {
  if (frame.kind !== 'activations') throw new InvalidFrameError('BAD_KIND', `expected an activations frame, got ${frame.kind}`)
  if (frame.shape.length !== 2 || frame.shape[1] !== dim) {
    throw new InvalidFrameError('BAD_SHAPE', `activations of shape [${frame.shape.join(', ')}] do not fit the model's dim ${dim}`)
  }
  const n = frame.shape[0] * dim
  let out: Float32Array
  if (frame.dtype === 'F32') {
    out = new Float32Array(aligned(frame.payload, 4), offset(frame.payload, 4), n)
  } else if (frame.dtype === 'F16') {
    const table = halfTable()
    const half = new Uint16Array(aligned(frame.payload, 2), offset(frame.payload, 2), n)
    out = new Float32Array(n)
    for (let i = 0; i < n; i++) out[i] = table[half[i]]
  } else {
    throw new InvalidFrameError('BAD_DTYPE', `activations cannot be ${frame.dtype}`)
  }
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(out[i])) throw new InvalidFrameError('NON_FINITE', `activation ${i} (position ${frame.position + Math.floor(i / dim)}) is ${out[i]}`)
  }
  return out
}

/** Token ids as an I32 payload. */
export function tokenPayload (tokens: ArrayLike<number>): Uint8Array {
  return new Uint8Array(Int32Array.from(tokens).buffer)
}

/** The token ids of a tokens or sampled frame, each checked against the vocabulary. */
export function frameTokens (frame: Frame, vocabSize: number): number[] {
  if (frame.kind === 'activations') throw new InvalidFrameError('BAD_KIND', 'expected token ids, got activations')
  if (frame.dtype !== 'I32' || frame.shape.length !== 1) throw new InvalidFrameError('BAD_SHAPE', `token ids must be I32 of rank 1, got ${frame.dtype} [${frame.shape.join(', ')}]`)
  const ids = Array.from(new Int32Array(aligned(frame.payload, 4), offset(frame.payload, 4), frame.shape[0]))
  const bad = ids.findIndex(id => id < 0 || id >= vocabSize)
  if (bad >= 0) throw new InvalidFrameError('BAD_SHAPE', `token id ${ids[bad]} at index ${bad} is outside the vocabulary [0, ${vocabSize})`)
  return ids
}
