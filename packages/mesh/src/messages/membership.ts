import { array, bool, decodeObject, isPeerId, nonNegative, numberMap, peerId, peerIdOrNull, record, sameSender, str, stringMap, uint } from '../codec.ts'
import { MAX_MEMBERSHIP_BYTES } from '../constants.ts'
import { InvalidMessageError } from '../errors.ts'
import { MAX_TICKET_CHARS } from '../admission.ts'
import type { Capabilities, LayerRange, MeshRole } from '../types.ts'

/** What a peer is and offers: sent in full announcements only. */
export interface Profile {
  addrs: string[]
  role: MeshRole
  eligible: boolean
  capabilities: Capabilities
  layers: LayerRange[]
  /** Private meshes: the operator's admission ticket of this peer (see admission.ts). */
  ticket?: string
  /**
   * The peers whose votes a genesis election of this peer needs (quorum.ts `GenesisAnchors`):
   * itself when it has no bootstrap peer, else its bootstrap peers' anchors. Absent until known.
   */
  anchors?: string[]
}

/**
 * A member's heartbeat on the membership topic: what it sees (term, coordinator, state
 * head) and its load; in full announcements also its profile (addresses, capabilities,
 * layers). Full ones go out at start, every few periods, on change and when a new member
 * appears, so heartbeats stay small in large meshes.
 */
export interface Announce {
  type: 'announce'
  peerId: string
  /** Increases with every announcement of one run of the peer; older ones are dropped. */
  seq: number
  profile?: Profile
  load: number
  term: number
  coordinator: string | null
  stateVersion: number
  stateTerm: number
}

export const MAX_ADDRS = 16
export const MAX_LAYER_RANGES = 64
export const MAX_ANCHORS = 64

function capabilities (obj: Record<string, unknown>): Capabilities {
  const caps = record(obj, 'capabilities')
  const runtime = record(caps, 'runtime')
  const backend = record(caps, 'backend')
  const kind = backend.kind
  if (kind !== 'cpu' && kind !== 'webgpu') throw new InvalidMessageError('malformed', '"backend.kind" must be cpu or webgpu')
  const out: Capabilities = {
    runtime: { name: str(runtime, 'name', 64), version: str(runtime, 'version', 64) },
    backend: { kind },
    memoryBytes: nonNegative(caps, 'memoryBytes')
  }
  if (backend.adapter !== undefined) out.backend.adapter = stringMap(backend.adapter, 'backend.adapter', 16, 256)
  if (backend.limits !== undefined) out.backend.limits = numberMap(backend.limits, 'backend.limits', 64)
  if (caps.throughput !== undefined) {
    const t = record(caps, 'throughput')
    out.throughput = { model: str(t, 'model', 128), decodeTokensPerSecond: nonNegative(t, 'decodeTokensPerSecond') }
  }
  return out
}

function layers (obj: Record<string, unknown>): LayerRange[] {
  return array(obj, 'layers', MAX_LAYER_RANGES).map(r => {
    if (!Array.isArray(r) || r.length !== 2 || !r.every(x => Number.isSafeInteger(x) && x >= 0) || r[0] >= r[1]) {
      throw new InvalidMessageError('malformed', '"layers" must be [l0, l1) ranges with 0 <= l0 < l1')
    }
    return [r[0], r[1]] as LayerRange
  })
}

function profile (obj: Record<string, unknown>): Profile {
  const role = obj.role
  if (role !== 'peer' && role !== 'bootstrap') throw new InvalidMessageError('malformed', '"role" must be peer or bootstrap')
  const addrs = array(obj, 'addrs', MAX_ADDRS)
  if (!addrs.every(a => typeof a === 'string' && a.length > 0 && a.length <= 512 && a.startsWith('/'))) {
    throw new InvalidMessageError('malformed', '"addrs" must be multiaddr strings')
  }
  const out: Profile = { addrs: addrs as string[], role, eligible: bool(obj, 'eligible'), capabilities: capabilities(obj), layers: layers(obj) }
  if (obj.ticket !== undefined) out.ticket = str(obj, 'ticket', MAX_TICKET_CHARS)
  if (obj.anchors !== undefined) {
    const anchors = array(obj, 'anchors', MAX_ANCHORS)
    if (anchors.length === 0 || !anchors.every(isPeerId)) throw new InvalidMessageError('malformed', '"anchors" must be 1–64 peer ids')
    out.anchors = anchors
  }
  return out
}

/** Validate an announcement signed by `from`. */
export function parseMembership (data: Uint8Array, from: string): Announce {
  const obj = decodeObject(data, MAX_MEMBERSHIP_BYTES)
  if (obj.type !== 'announce') throw new InvalidMessageError('unknown-type', `membership message type "${String(obj.type)}"`)
  const id = peerId(obj, 'peerId')
  sameSender(id, from, 'peerId')
  const coordinator = peerIdOrNull(obj, 'coordinator')
  return {
    type: 'announce',
    peerId: id,
    seq: uint(obj, 'seq'),
    profile: obj.profile === undefined ? undefined : profile(record(obj, 'profile')),
    load: nonNegative(obj, 'load'),
    term: uint(obj, 'term'),
    coordinator: coordinator !== null && isPeerId(coordinator) ? coordinator : null,
    stateVersion: uint(obj, 'stateVersion'),
    stateTerm: uint(obj, 'stateTerm')
  }
}
