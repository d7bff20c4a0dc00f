import * as c from './constants.ts'
import { MeshConfigError } from './errors.ts'
import type { ElectionTiming } from './election.ts'
import type { MembershipTiming } from './membership.ts'
import type { ReplicationTiming } from './replication.ts'

/** Every period and timeout of the mesh, in ms. Defaults in constants.ts. */
export interface MeshTiming extends MembershipTiming, ElectionTiming, ReplicationTiming {
  announceIntervalMs: number
  announcePerMemberMs: number
  earlyAnnounceMinGapMs: number
  sweepIntervalMs: number
  discoveryIntervalMs: number
}

export const DEFAULT_TIMING: Readonly<MeshTiming> = {
  announceIntervalMs: c.ANNOUNCE_INTERVAL_MS,
  announcePerMemberMs: c.ANNOUNCE_PER_MEMBER_MS,
  earlyAnnounceMinGapMs: c.EARLY_ANNOUNCE_MIN_GAP_MS,
  sweepIntervalMs: c.SWEEP_INTERVAL_MS,
  discoveryIntervalMs: c.DISCOVERY_INTERVAL_MS,
  suspectAfterMs: c.SUSPECT_AFTER_MS,
  deadAfterMs: c.DEAD_AFTER_MS,
  disconnectDeadAfterMs: c.DISCONNECT_DEAD_AFTER_MS,
  forgetDeadAfterMs: c.FORGET_DEAD_AFTER_MS,
  heartbeatIntervalMs: c.HEARTBEAT_INTERVAL_MS,
  electionTimeoutMinMs: c.ELECTION_TIMEOUT_MIN_MS,
  electionTimeoutMaxMs: c.ELECTION_TIMEOUT_MAX_MS,
  fastElectionMinMs: c.FAST_ELECTION_MIN_MS,
  fastElectionMaxMs: c.FAST_ELECTION_MAX_MS,
  leaseMs: c.LEASE_MS,
  checkQuorumMs: c.CHECK_QUORUM_MS,
  syncTimeoutMs: c.SYNC_TIMEOUT_MS,
  syncRequestMinGapMs: c.SYNC_REQUEST_MIN_GAP_MS,
  removeDeadAfterMs: c.REMOVE_DEAD_AFTER_MS
}

/** Defaults overlaid with `overrides`, checked for consistency. */
export function meshTiming (overrides: Partial<MeshTiming> = {}): MeshTiming {
  const t = { ...DEFAULT_TIMING, ...overrides }
  for (const [k, v] of Object.entries(t)) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new MeshConfigError(`timing.${k} must be a positive number of ms, got ${String(v)}`)
  }
  if (t.electionTimeoutMinMs > t.electionTimeoutMaxMs) throw new MeshConfigError('timing.electionTimeoutMinMs exceeds electionTimeoutMaxMs')
  if (t.fastElectionMinMs > t.fastElectionMaxMs) throw new MeshConfigError('timing.fastElectionMinMs exceeds fastElectionMaxMs')
  if (t.heartbeatIntervalMs * 2 > t.electionTimeoutMinMs) throw new MeshConfigError('timing.heartbeatIntervalMs must be at most half of electionTimeoutMinMs')
  if (t.suspectAfterMs > t.deadAfterMs) throw new MeshConfigError('timing.suspectAfterMs exceeds deadAfterMs')
  if (t.announceIntervalMs * 2 > t.suspectAfterMs) throw new MeshConfigError('timing.announceIntervalMs must be at most half of suspectAfterMs')
  return t
}
