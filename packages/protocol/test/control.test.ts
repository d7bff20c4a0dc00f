import { describe, expect, it } from 'vitest'
import { decodeControl, encodeControl, isControlMessage } from '../src/index.ts'
import type { ControlMessage } from '../src/index.ts'

const session = '0123456789abcdef0123456789abcdef'
const open: ControlMessage = {
  type: 'open',
  session,
  model: 'stories260K',
  hop: 1,
  route: [{ peerId: 'a', addrs: ['/ip4/127.0.0.1/tcp/1/p2p/a'], layers: [0, 2] }, { peerId: 'b', addrs: [], layers: [2, 5] }],
  head: { peerId: 'h', addrs: [] },
  sampling: { temperature: 0.8, topK: 40, topP: 0.9, seed: 7 }
}

function raw (json: string, version = 1): Uint8Array {
  const body = new TextEncoder().encode(json)
  return new Uint8Array([0x53, 0x43, version, ...body])
}

describe('control messages', () => {
  it('round-trip open, close and error', () => {
    for (const msg of [open, { type: 'close', session } as const, { type: 'error', session, code: 'NON_FINITE', message: 'x' } as const]) {
      const bytes = encodeControl(msg)
      expect(isControlMessage(bytes)).toBe(true)
      expect(decodeControl(bytes)).toEqual(msg)
    }
  })

  it('refuse malformed messages with InvalidControlMessageError', () => {
    const bad = [
      raw('{'),
      raw(JSON.stringify({ type: 'close', session: 'xyz' })),
      raw(JSON.stringify({ type: 'nope', session })),
      raw(JSON.stringify({ ...open, hop: 2 })),
      raw(JSON.stringify({ ...open, route: [{ peerId: 'a', addrs: [], layers: [3, 3] }] })),
      raw(JSON.stringify({ ...open, sampling: { temperature: -1, topK: 0, topP: 1, seed: 0 } })),
      raw(JSON.stringify({ type: 'close', session }), 2),
      new Uint8Array([0x53, 0x4d, 1])
    ]
    for (const b of bad) expect(() => decodeControl(b)).toThrow(expect.objectContaining({ name: 'InvalidControlMessageError' }))
  })

  it('do not look like frames', () => {
    expect(isControlMessage(new Uint8Array([0x53, 0x4d, 1, 0]))).toBe(false)
  })
})
