/** The stage protocol: length-prefixed frames and control messages (packages/protocol). */
export const STAGE_PROTOCOL = '/shardmesh/stage/1.0.0'
/** Inbound stage streams one peer accepts at a time. */
export const MAX_INBOUND_STREAMS = 64
/** Longest a head waits for one step's token before failing the session. */
export const STEP_TIMEOUT_MS = 60_000
/** Longest a dial of the next stage may take. */
export const DIAL_TIMEOUT_MS = 10_000
