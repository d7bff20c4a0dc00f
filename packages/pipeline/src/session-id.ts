import { SESSION_ID_BYTES } from '@shardmesh/protocol'

export function newSessionId (): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(SESSION_ID_BYTES))
}

export function sessionHex (id: Uint8Array): string {
  let s = ''
  for (const b of id) s += b.toString(16).padStart(2, '0')
  return s
}

export function sessionBytes (hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2)
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16)
  return out
}
