import { InvalidControlMessageError } from './errors.ts'

/**
 * Control messages travel on the same length-prefixed streams as frames. Layout: magic "SC",
 * version byte, then UTF-8 JSON of one of the types below, checked field by field.
 */
export const CONTROL_MAGIC_0 = 0x53 // 'S'
export const CONTROL_MAGIC_1 = 0x43 // 'C'
export const CONTROL_VERSION = 1
/** Largest control message accepted (a route of 64 hops with a few addresses each fits). */
export const MAX_CONTROL_BYTES = 64 * 1024
const MAX_HOPS = 256
const MAX_ADDRS = 16

/** A peer and where to dial it (multiaddrs ending in /p2p/<id>, or none when connected). */
export interface PeerRef { peerId: string, addrs: string[] }
/**
 * One stage of a session's route. `mirror` (level high, strategy parallel): a warm standby
 * that is sent everything this hop is sent and keeps the same KV cache, so it can take over
 * with no replay. `units` (strategy attention_feedforward): the hop runs units `[u0, u1)` —
 * unit 2l is layer l's attention, 2l+1 its feed-forward — and `layers` is their covering range
 * `[⌊u0/2⌋, ⌈u1/2⌉)`; without it the hop runs whole layers.
 */
export interface RouteHop extends PeerRef { layers: [number, number], units?: [number, number], mirror?: PeerRef }

export interface ControlSampling { temperature: number, topK: number, topP: number, seed: number }

/**
 * - `open`: start a session on `route[hop]` (forwarded hop by hop); the last hop sends sampled
 *   ids to `head`. With `replayTo` it opens a replacement during recovery: forwarded only while
 *   `hop < replayTo` (the hops after are open already), frames of steps below `step` refused.
 *   With `shadow` it opens the session on `route[hop].mirror`: computed and logged, never
 *   forwarded or sampled, until a `reroute` names the mirror as the hop.
 * - `close`: drop the session's KV cache and output log (forwarded hop by hop; a head may send
 *   it to every hop of an abandoned route)
 * - `error`: a stage refused or failed one session's input (sent to the head); `blame` names
 *   the peer at fault when it is not the sender (e.g. an unreachable next hop)
 * - `reroute` (head → a surviving hop): forget positions `>= position`, take `route`/`hop`,
 *   refuse frames of steps below `step`; when `replayTo > hop`, open `route[hop + 1]` and
 *   replay the output log into it. Answered with `rerouted` (or `error`).
 * - `prepare` (head → a candidate replacement): serve `layers` of `model` (load them if not
 *   held). Answered with `prepared` (its backend and activation dtype, for the exactness
 *   guard) or `error`. `session` is the request id.
 * - `digest` (head → a stage, level `critical`): a hash of every output the stage sent for the
 *   session at positions `<= position`; answered with `digested` (hex SHA-256). Replicas of a
 *   stage that computed the same give the same digest, whatever the chunking.
 */
export type ControlMessage =
  | { type: 'open', session: string, model: string, hop: number, route: RouteHop[], head: PeerRef, sampling: ControlSampling, replayTo?: number, step?: number, shadow?: boolean }
  | { type: 'close', session: string }
  | { type: 'error', session: string, code: string, message: string, blame?: string }
  | { type: 'reroute', session: string, hop: number, route: RouteHop[], position: number, step: number, replayTo?: number }
  | { type: 'rerouted', session: string, hop: number }
  | { type: 'prepare', session: string, model: string, layers: [number, number], units?: [number, number] }
  | { type: 'prepared', session: string, layers: [number, number], units?: [number, number], backend: string, activations: string }
  | { type: 'digest', session: string, position: number }
  | { type: 'digested', session: string, position: number, digest: string }

export function isControlMessage (bytes: Uint8Array): boolean {
  return bytes.byteLength >= 3 && bytes[0] === CONTROL_MAGIC_0 && bytes[1] === CONTROL_MAGIC_1
}

export function encodeControl (msg: ControlMessage): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(checkControl(msg)))
  const out = new Uint8Array(3 + json.byteLength)
  out[0] = CONTROL_MAGIC_0
  out[1] = CONTROL_MAGIC_1
  out[2] = CONTROL_VERSION
  out.set(json, 3)
  if (out.byteLength > MAX_CONTROL_BYTES) throw new InvalidControlMessageError(`control message of ${out.byteLength} bytes exceeds ${MAX_CONTROL_BYTES}`)
  return out
}

/** Parse and check a control message; anything malformed throws InvalidControlMessageError. */
export function decodeControl (bytes: Uint8Array): ControlMessage {
  if (bytes.byteLength > MAX_CONTROL_BYTES) throw new InvalidControlMessageError(`control message of ${bytes.byteLength} bytes exceeds ${MAX_CONTROL_BYTES}`)
  if (!isControlMessage(bytes)) throw new InvalidControlMessageError('not a control message (bad magic)')
  if (bytes[2] !== CONTROL_VERSION) throw new InvalidControlMessageError(`control version ${bytes[2]}; this peer speaks version ${CONTROL_VERSION}`)
  let value: unknown
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(3)))
  } catch {
    throw new InvalidControlMessageError('control message is not UTF-8 JSON')
  }
  return checkControl(value)
}

const SESSION_HEX = /^[0-9a-f]{32}$/

function fail (what: string): never {
  throw new InvalidControlMessageError(`invalid control message: ${what}`)
}

function str (v: unknown, what: string, max = 512): string {
  if (typeof v !== 'string' || v.length > max) fail(`${what} must be a string of at most ${max} characters`)
  return v
}

function num (v: unknown, what: string, min: number, max: number, integer = false): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) fail(`${what} must be a ${integer ? 'whole ' : ''}number in [${min}, ${max}]`)
  return v
}

function peerRef (v: unknown, what: string): PeerRef {
  if (typeof v !== 'object' || v === null) fail(`${what} must be an object`)
  const o = v as Record<string, unknown>
  const addrs = o.addrs
  if (!Array.isArray(addrs) || addrs.length > MAX_ADDRS) fail(`${what}.addrs must be an array of at most ${MAX_ADDRS}`)
  return { peerId: str(o.peerId, `${what}.peerId`, 128), addrs: addrs.map((a, i) => str(a, `${what}.addrs[${i}]`)) }
}

function layerRange (v: unknown, what: string): [number, number] {
  if (!Array.isArray(v) || v.length !== 2) fail(`${what} must be [l0, l1]`)
  const l0 = num(v[0], `${what}[0]`, 0, 1e6, true)
  return [l0, num(v[1], `${what}[1]`, l0 + 1, 1e6, true)]
}

/** Optional `units` of a hop or request, whose covering range must be `layers`. */
function unitsOf (v: unknown, layers: [number, number], what: string): { units?: [number, number] } {
  if (v === undefined) return {}
  const units = layerRange(v, what)
  if (Math.floor(units[0] / 2) !== layers[0] || Math.ceil(units[1] / 2) !== layers[1]) fail(`${what} [${units.join(', ')}] is not within layers [${layers.join(', ')}] (covering range [⌊u0/2⌋, ⌈u1/2⌉))`)
  return { units }
}

/** A route as a message carries it (hops with layers or units, mirrors); InvalidControlMessageError when malformed. */
export function checkRoute (v: unknown): RouteHop[] {
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_HOPS) fail(`route must have 1..${MAX_HOPS} hops`)
  return v.map((h: unknown, i: number): RouteHop => {
    const ref = peerRef(h, `route[${i}]`)
    const layers = layerRange((h as { layers?: unknown }).layers, `route[${i}].layers`)
    const hop: RouteHop = { ...ref, layers, ...unitsOf((h as { units?: unknown }).units, layers, `route[${i}].units`) }
    const mirror = (h as { mirror?: unknown }).mirror
    return mirror === undefined ? hop : { ...hop, mirror: peerRef(mirror, `route[${i}].mirror`) }
  })
}

/** A peer reference (id and addresses); InvalidControlMessageError when malformed. */
export function checkPeerRef (v: unknown, what: string): PeerRef { return peerRef(v, what) }

function checkControl (value: unknown): ControlMessage {
  if (typeof value !== 'object' || value === null) fail('not an object')
  const o = value as Record<string, unknown>
  const session = str(o.session, 'session', 32)
  if (!SESSION_HEX.test(session)) fail('session must be 32 lowercase hex digits')
  if (o.type === 'close') return { type: 'close', session }
  if (o.type === 'error') {
    const e = { type: 'error' as const, session, code: str(o.code, 'code', 64), message: str(o.message, 'message', 2048) }
    return o.blame === undefined ? e : { ...e, blame: str(o.blame, 'blame', 128) }
  }
  if (o.type === 'rerouted') return { type: 'rerouted', session, hop: num(o.hop, 'hop', 0, MAX_HOPS - 1, true) }
  if (o.type === 'prepare') {
    const layers = layerRange(o.layers, 'layers')
    return { type: 'prepare', session, model: str(o.model, 'model', 256), layers, ...unitsOf(o.units, layers, 'units') }
  }
  if (o.type === 'prepared') {
    const layers = layerRange(o.layers, 'layers')
    return { type: 'prepared', session, layers, ...unitsOf(o.units, layers, 'units'), backend: str(o.backend, 'backend', 64), activations: str(o.activations, 'activations', 16) }
  }
  if (o.type === 'digest') return { type: 'digest', session, position: num(o.position, 'position', 0, 2 ** 32 - 1, true) }
  if (o.type === 'digested') {
    const digest = str(o.digest, 'digest', 64)
    if (!/^[0-9a-f]{64}$/.test(digest)) fail('digest must be 64 lowercase hex digits')
    return { type: 'digested', session, position: num(o.position, 'position', 0, 2 ** 32 - 1, true), digest }
  }
  // a string is quoted (cut to 64 characters); anything else is named by its type (a deeply nested array would overflow JSON.stringify)
  if (o.type !== 'open' && o.type !== 'reroute') fail(`unknown type ${typeof o.type === 'string' ? JSON.stringify(o.type.slice(0, 64)) : typeof o.type}`)
  const route = checkRoute(o.route)
  const hop = num(o.hop, 'hop', 0, route.length - 1, true)
  const replayTo = o.replayTo === undefined ? {} : { replayTo: num(o.replayTo, 'replayTo', 0, route.length - 1, true) }
  if (o.type === 'reroute') {
    return { type: 'reroute', session, hop, route, position: num(o.position, 'position', 0, 2 ** 32 - 1, true), step: num(o.step, 'step', 0, 2 ** 32 - 1, true), ...replayTo }
  }
  const s = o.sampling as Record<string, unknown> | null
  if (typeof s !== 'object' || s === null) fail('sampling must be an object')
  return {
    type: 'open',
    session,
    model: str(o.model, 'model', 256),
    hop,
    route,
    head: peerRef(o.head, 'head'),
    ...replayTo,
    ...(o.step === undefined ? {} : { step: num(o.step, 'step', 0, 2 ** 32 - 1, true) }),
    ...(o.shadow === true ? { shadow: true } : {}),
    sampling: {
      temperature: num(s.temperature, 'sampling.temperature', 0, 100),
      topK: num(s.topK, 'sampling.topK', 0, 1e7, true),
      topP: num(s.topP, 'sampling.topP', 0, 1),
      seed: num(s.seed, 'sampling.seed', 0, 2 ** 32 - 1, true)
    }
  }
}
