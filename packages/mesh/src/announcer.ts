import { FULL_ANNOUNCE_EVERY, FULL_ANNOUNCES_AT_START } from './constants.ts'
import type { Announce, Profile } from './messages/membership.ts'
import type { MeshTiming } from './timing.ts'

export interface AnnouncerDeps {
  self: string
  timing: Pick<MeshTiming, 'announceIntervalMs' | 'announcePerMemberMs' | 'earlyAnnounceMinGapMs'>
  aliveCount: () => number
  profile: () => Profile
  /** What the peer sees now: load, term, coordinator, state head. */
  view: () => Pick<Announce, 'load' | 'term' | 'coordinator' | 'stateVersion' | 'stateTerm'>
  /** Record and publish one announcement. */
  send: (a: Announce, at: number) => void
}

/**
 * This peer's membership heartbeat: every period (the configured one, stretched to
 * `alive members × announcePerMemberMs` in large meshes), early after a change, and with
 * the full profile at start, every few periods, on change and after a new member appeared.
 */
export class Announcer {
  private readonly deps: AnnouncerDeps
  private seq = 0
  private lastAt = 0
  private lastProfile = ''
  private newMemberSeen = false
  private timer: ReturnType<typeof setTimeout> | undefined
  private earlyTimer: ReturnType<typeof setTimeout> | undefined
  private running = false

  constructor (deps: AnnouncerDeps) {
    this.deps = deps
  }

  start (): void {
    this.running = true
    this.announce()
  }

  stop (): void {
    this.running = false
    clearTimeout(this.timer)
    clearTimeout(this.earlyTimer)
    this.earlyTimer = undefined
  }

  /** The announcement period now. */
  period (): number {
    return Math.max(this.deps.timing.announceIntervalMs, this.deps.aliveCount() * this.deps.timing.announcePerMemberMs)
  }

  /** How much the period is stretched (silence thresholds scale with it). */
  scale (): number {
    return this.period() / this.deps.timing.announceIntervalMs
  }

  /** Send the full profile next time (a newcomer should learn who we are). */
  newMember (): void {
    this.newMemberSeen = true
  }

  /** Announce now, but not more often than the early gap, which scales like the period. */
  soon (): void {
    if (!this.running || this.earlyTimer !== undefined) return
    const wait = this.lastAt + this.deps.timing.earlyAnnounceMinGapMs * this.scale() - Date.now()
    this.earlyTimer = setTimeout(() => { this.earlyTimer = undefined; this.announce() }, Math.max(0, wait))
  }

  private announce (): void {
    if (!this.running) return
    clearTimeout(this.timer)
    this.timer = setTimeout(() => { this.announce() }, this.period())
    this.lastAt = Date.now()
    const profile = this.deps.profile()
    const key = JSON.stringify(profile)
    const seq = ++this.seq
    const full = seq <= FULL_ANNOUNCES_AT_START || seq % FULL_ANNOUNCE_EVERY === 0 || key !== this.lastProfile || this.newMemberSeen
    this.lastProfile = key
    this.newMemberSeen = false
    this.deps.send({ type: 'announce', peerId: this.deps.self, seq, profile: full ? profile : undefined, ...this.deps.view() }, this.lastAt)
  }
}
