import { encodeControl } from '@shardmesh/protocol'
import { newSessionId, sessionHex } from './session-id.ts'
import type { DistrustReason } from './distrust.ts'
import type { Endpoint } from './endpoint.ts'
import type { Mesh } from '@shardmesh/mesh'
import type { RouteHop } from '@shardmesh/protocol'

/** Refusals of a range a peer announces that only a lie explains (an honest stage server loads any range of its model). */
export const LIAR_CODES = new Set(['NOT_SERVING', 'WRONG_STAGE'])

/**
 * Ask `hop` to prepare its layers, as a head does before a session: `prepared`, or the code
 * of its refusal, or `unanswered` (no reply within `timeoutMs`, or no stream).
 */
export async function askPrepare (endpoint: Endpoint, hop: RouteHop, model: string, timeoutMs: number): Promise<string> {
  const session = sessionHex(newSessionId())
  let off = (): void => {}
  let timer: ReturnType<typeof setTimeout> | undefined
  const reply = new Promise<string>(resolve => {
    timer = setTimeout(() => { resolve('unanswered') }, timeoutMs)
    off = endpoint.onMessage(msg => {
      if (!('control' in msg) || msg.from !== hop.peerId || !('session' in msg.control) || msg.control.session !== session) return
      if (msg.control.type === 'prepared') resolve('prepared')
      else if (msg.control.type === 'error') resolve(msg.control.code)
    })
  })
  try {
    await endpoint.send(hop, encodeControl({ type: 'prepare', session, model, layers: hop.layers }), { signal: AbortSignal.timeout(timeoutMs) })
    return await reply
  } catch {
    return 'unanswered'
  } finally {
    clearTimeout(timer)
    off()
  }
}

/** How long the coordinator waits for a reported peer to answer its own `prepare`. */
const VERIFY_TIMEOUT_MS = 10_000

/**
 * The coordinator's check of a member's report (`DistrustInit.verify`): for CLAIMED_LAYERS it
 * asks the peer itself to prepare each range it announces (at most two) and confirms the
 * report only if one is refused as only a lie explains — a head that lies about an honest
 * peer is not believed. Other reasons are taken on the reporter's word.
 */
export function verifyReports (init: { endpoint: Endpoint, mesh: Pick<Mesh, 'member'>, model: () => Promise<string | undefined>, timeoutMs?: number }): (peer: string, reason: DistrustReason) => Promise<boolean> {
  return async (peer, reason) => {
    if (reason !== 'CLAIMED_LAYERS') return true
    const member = init.mesh.member(peer)
    const model = await init.model()
    if (member === undefined || model === undefined) return false
    for (const layers of member.layers.slice(0, 2)) {
      const answer = await askPrepare(init.endpoint, { peerId: peer, addrs: member.addrs, layers }, model, init.timeoutMs ?? VERIFY_TIMEOUT_MS)
      if (LIAR_CODES.has(answer)) return true
    }
    return false
  }
}
