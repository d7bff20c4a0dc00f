/** The stage protocol: length-prefixed frames and control messages (packages/protocol). */
export const STAGE_PROTOCOL = '/shardmesh/stage/1.0.0'
/** Inbound stage streams one peer accepts at a time. */
export const MAX_INBOUND_STREAMS = 64
/**
 * Prompt positions per prefill frame on a route of several stages. Smaller chunks overlap the
 * stages more; each costs a frame and a pass, and a pass of few rows reads the weights for
 * little work. First token of a 512-token prompt, synthetic-100m over 2 peers on 2 cores
 * (medians of 3): one frame 4411 ms; chunks of 16 / 32 / 64 / 128 / 256: 3578 / 3269 / 3332 /
 * 3467 / 3757 ms.
 */
export const PREFILL_CHUNK = 64
/** Longest a head waits for one step's token before failing the session. */
export const STEP_TIMEOUT_MS = 60_000
/** Longest a dial of the next stage may take. */
export const DIAL_TIMEOUT_MS = 10_000
/**
 * A stage with fewer steps waiting than its batch cap, while other sessions are in flight,
 * waits for them at most this fraction of its last pass's time (bench:pipeline, 4 sessions
 * over 2 peers: ~6 % more tokens/s and ~10 % less CPU than not waiting).
 */
export const BATCH_WAIT = 0.3
