import { describe, expect, it } from 'vitest'
import { activationPayload, decodeFrame, encodeFrame, frameActivations, frameTokens, tokenPayload } from '../src/index.ts'
import type { Frame } from '../src/index.ts'

const session = Uint8Array.from({ length: 16 }, (_, i) => i * 7)
const dim = 6
const hidden = Float32Array.from({ length: 3 * dim }, (_, i) => Math.sin(i) * 10)

function activations (dtype: 'F32' | 'F16' = 'F32'): Frame {
  return { kind: 'activations', session, step: 42, position: 17, dtype, shape: [3, dim], payload: activationPayload(hidden, dtype) }
}

describe('activation frames', () => {
  it('round-trip header and payload exactly in F32', () => {
    const f = decodeFrame(encodeFrame(activations()))
    expect(f).toMatchObject({ kind: 'activations', step: 42, position: 17, dtype: 'F32', shape: [3, dim] })
    expect(Array.from(f.session)).toEqual(Array.from(session))
    expect(Array.from(frameActivations(f, dim))).toEqual(Array.from(hidden))
  })

  it('carry the partial flag (a prompt chunk with more to follow), false by default', () => {
    expect(decodeFrame(encodeFrame(activations())).partial).toBe(false)
    expect(decodeFrame(encodeFrame({ ...activations(), partial: true })).partial).toBe(true)
  })

  it('carry F16 at half the bytes, within half precision', () => {
    const wire = encodeFrame(activations('F16'))
    expect(wire.byteLength).toBe(36 + 8 + 3 * dim * 2)
    const back = frameActivations(decodeFrame(wire), dim)
    for (let i = 0; i < hidden.length; i++) expect(Math.abs(back[i] - hidden[i])).toBeLessThanOrEqual(Math.abs(hidden[i]) * 2 ** -11 + 1e-7)
  })

  it('decode from an unaligned buffer', () => {
    const wire = encodeFrame(activations())
    const shifted = new Uint8Array(wire.byteLength + 1)
    shifted.set(wire, 1)
    expect(Array.from(frameActivations(decodeFrame(shifted.subarray(1)), dim))).toEqual(Array.from(hidden))
  })

  it('carry token ids and check them against the vocabulary', () => {
    const f = decodeFrame(encodeFrame({ kind: 'tokens', session, step: 0, position: 0, dtype: 'I32', shape: [4], payload: tokenPayload([1, 403, 407, 261]) }))
    expect(frameTokens(f, 512)).toEqual([1, 403, 407, 261])
    expect(() => frameTokens(f, 400)).toThrow(/token id 403 at index 1 is outside the vocabulary/)
  })
})

describe('bad frames are refused with a code, never half-used', () => {
  const good = encodeFrame(activations())
  const cases: Array<[string, () => Uint8Array, string]> = [
    ['empty', () => new Uint8Array(0), 'TRUNCATED'],
    ['cut in the header', () => good.subarray(0, 20), 'TRUNCATED'],
    ['cut in the payload', () => good.subarray(0, good.byteLength - 1), 'TRUNCATED'],
    ['trailing bytes', () => { const b = new Uint8Array(good.byteLength + 4); b.set(good); b.set([0, 0, 0, 0], good.byteLength); return b }, 'BAD_LENGTH'],
    ['bad magic', () => { const b = good.slice(); b[0] = 0; return b }, 'BAD_MAGIC'],
    ['future version', () => { const b = good.slice(); b[2] = 9; return b }, 'BAD_VERSION'],
    ['unknown flag bits', () => { const b = good.slice(); b[30] = 6; return b }, 'BAD_FLAGS'],
    ['unknown kind', () => { const b = good.slice(); b[3] = 77; return b }, 'BAD_KIND'],
    ['unknown dtype', () => { const b = good.slice(); b[28] = 5; return b }, 'BAD_DTYPE'],
    ['rank 0', () => { const b = good.slice(); b[29] = 0; return b }, 'BAD_SHAPE'],
    ['shape that does not match the payload', () => { const b = good.slice(); new DataView(b.buffer).setUint32(36, 4, true); return b }, 'BAD_LENGTH'],
    ['zero dimension', () => { const b = good.slice(); new DataView(b.buffer).setUint32(40, 0, true); return b }, 'BAD_SHAPE']
  ]
  it.each(cases)('%s', (_name, make, code) => {
    expect(() => decodeFrame(make())).toThrow(expect.objectContaining({ name: 'InvalidFrameError', code }))
  })

  it('oversized frames, before parsing', () => {
    expect(() => decodeFrame(good, { maxBytes: 64 })).toThrow(expect.objectContaining({ code: 'TOO_LARGE' }))
  })

  it('activations of the wrong width or with NaN', () => {
    const f = decodeFrame(good)
    expect(() => frameActivations(f, dim + 1)).toThrow(expect.objectContaining({ code: 'BAD_SHAPE' }))
    const nan = hidden.slice()
    nan[dim + 2] = NaN
    const bad = decodeFrame(encodeFrame({ ...activations(), payload: activationPayload(nan, 'F32') }))
    expect(() => frameActivations(bad, dim)).toThrow(expect.objectContaining({ code: 'NON_FINITE', message: expect.stringContaining('position 18') }))
  })
})
