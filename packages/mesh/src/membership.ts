import type { Announce, Profile } from './messages/membership.ts'
import type { Member, MemberStatus } from './types.ts'

/** Until a member's full announcement arrives. */
const UNKNOWN_PROFILE: Profile = { addrs: [], role: 'peer', eligible: false, capabilities: { runtime: { name: 'unknown', version: '' }, backend: { kind: 'cpu' }, memoryBytes: 0 }, layers: [] }

export interface MembershipTiming {
  suspectAfterMs: number
  deadAfterMs: number
  disconnectDeadAfterMs: number
  forgetDeadAfterMs: number
}

export interface StatusChange { peerId: string, status: MemberStatus, at: number, reason: string }

const MAX_TRANSITIONS = 16

interface Row extends Member {
  seq: number
  disconnectedAt: number | null
}

/**
 * The membership table: the last announcement of every peer, and its status. A peer is
 * alive while it is heard; suspect once silent for `suspectAfterMs` or as soon as every
 * connection to it closed; dead once silent for `deadAfterMs`, or `disconnectDeadAfterMs`
 * after its connections closed with nothing heard since. Any message from it revives it.
 */
export class MembershipTable {
  private readonly rows = new Map<string, Row>()
  private readonly self: string
  private readonly timing: MembershipTiming

  constructor (self: string, timing: MembershipTiming) {
    this.self = self
    this.timing = timing
  }

  /** Record an announcement (also the peer's own); returns a status change if any. */
  announce (a: Announce, at: number): StatusChange | undefined {
    let row = this.rows.get(a.peerId)
    if (row !== undefined && a.seq <= row.seq && row.status !== 'dead') return undefined // reordered or replayed
    const info = {
      ...(a.profile ?? (row === undefined ? UNKNOWN_PROFILE : {})),
      peerId: a.peerId,
      load: a.load,
      term: a.term,
      coordinator: a.coordinator,
      stateVersion: a.stateVersion,
      stateTerm: a.stateTerm
    }
    if (row === undefined) {
      row = { ...UNKNOWN_PROFILE, ...info, seq: a.seq, status: 'alive', lastSeen: at, firstSeen: at, connected: false, disconnectedAt: null, transitions: [{ status: 'alive', at, reason: 'joined' }] }
      this.rows.set(a.peerId, row)
      return { peerId: a.peerId, status: 'alive', at, reason: 'joined' }
    }
    Object.assign(row, info)
    row.seq = a.seq
    return this.heard(a.peerId, at)
  }

  /** Any valid message from a known member: it is alive. */
  heard (peerId: string, at: number): StatusChange | undefined {
    const row = this.rows.get(peerId)
    if (row === undefined) return undefined
    row.lastSeen = Math.max(row.lastSeen, at)
    row.disconnectedAt = null
    return row.status === 'alive' ? undefined : this.move(row, 'alive', at, 'heard')
  }

  connected (peerId: string, connected: boolean, at: number): StatusChange | undefined {
    const row = this.rows.get(peerId)
    if (row === undefined) return undefined
    row.connected = connected
    if (connected) return undefined
    row.disconnectedAt = at
    return row.status === 'alive' && peerId !== this.self ? this.move(row, 'suspect', at, 'disconnected') : undefined
  }

  /** Re-evaluate every status against the clock; `scale` stretches the silence thresholds (large meshes announce less often). */
  sweep (at: number, scale = 1): StatusChange[] {
    const changes: StatusChange[] = []
    const { forgetDeadAfterMs } = this.timing
    const suspectAfterMs = this.timing.suspectAfterMs * scale
    const deadAfterMs = this.timing.deadAfterMs * scale
    const disconnectDeadAfterMs = this.timing.disconnectDeadAfterMs * scale
    for (const row of this.rows.values()) {
      if (row.peerId === this.self) continue
      const silent = at - row.lastSeen
      if (row.status === 'dead') {
        if (at - row.transitions[row.transitions.length - 1].at > forgetDeadAfterMs) this.rows.delete(row.peerId)
        continue
      }
      if (silent > deadAfterMs) {
        changes.push(this.move(row, 'dead', at, 'silent'))
      } else if (row.status === 'suspect' && row.disconnectedAt !== null && !row.connected && at - Math.max(row.disconnectedAt, row.lastSeen) > disconnectDeadAfterMs) {
        changes.push(this.move(row, 'dead', at, 'disconnected'))
      } else if (row.status === 'alive' && silent > suspectAfterMs) {
        changes.push(this.move(row, 'suspect', at, 'silent'))
      }
    }
    return changes
  }

  private move (row: Row, status: MemberStatus, at: number, reason: string): StatusChange {
    row.status = status
    row.transitions.push({ status, at, reason })
    if (row.transitions.length > MAX_TRANSITIONS) row.transitions.splice(0, row.transitions.length - MAX_TRANSITIONS)
    return { peerId: row.peerId, status, at, reason }
  }

  get (peerId: string): Member | undefined {
    const row = this.rows.get(peerId)
    return row === undefined ? undefined : toMember(row)
  }

  status (peerId: string): MemberStatus | undefined {
    return this.rows.get(peerId)?.status
  }

  lastSeen (peerId: string): number | undefined {
    return this.rows.get(peerId)?.lastSeen
  }

  /** Time of the member's newest transition to dead, if it is dead. */
  deadSince (peerId: string): number | undefined {
    const row = this.rows.get(peerId)
    return row?.status === 'dead' ? row.transitions[row.transitions.length - 1].at : undefined
  }

  list (): Member[] {
    return [...this.rows.values()].map(toMember)
  }

  /** Peer ids whose status is alive (self included once it announced). */
  alive (): string[] {
    return [...this.rows.values()].filter(r => r.status === 'alive').map(r => r.peerId)
  }

  rawRows (): Iterable<Readonly<Member>> {
    return this.rows.values()
  }
}

function toMember (row: Row): Member {
  const { seq: _seq, disconnectedAt: _d, ...member } = row
  return { ...member, transitions: [...member.transitions] }
}
