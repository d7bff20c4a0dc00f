/** The stage protocol: length-prefixed frames and control messages (packages/protocol). */
export const STAGE_PROTOCOL = '/shardmesh/stage/1.0.0'
/** Inbound stage streams one peer accepts at a time. */
export const MAX_INBOUND_STREAMS = 64
/**
 * Prompt positions per prefill frame on a route of several stages. Smaller chunks overlap the
 * stages more; each costs a frame and a pass, and a pass of few rows reads the weights for
 * little work. Chosen by measurement (pipeline README, prefill chunks).
 */
export const PREFILL_CHUNK = 64
/** Longest a head waits for one step's token before failing the session. */
export const STEP_TIMEOUT_MS = 60_000
/** Longest a dial of the next stage may take. */
export const DIAL_TIMEOUT_MS = 10_000
/**
 * A stage with fewer steps waiting than its batch cap, while other sessions are in flight,
 * waits for them at most this fraction of its last pass's time (measured with bench:pipeline:
 * pipeline README, stage server).
 */
export const BATCH_WAIT = 0.3
/** A stage session that received no frame for this long is dropped (its head is gone or gave up). */
export const SESSION_IDLE_TTL_MS = 120_000
/**
 * Open sessions one upstream peer may hold on one stage server for one head (at the first hop
 * the upstream is the head); more are refused (`TOO_MANY_SESSIONS`).
 */
export const MAX_SESSIONS_PER_UPSTREAM = 256
/** Sessions count as in flight for batching only if they had a frame within this window (leaked ones do not stretch batch waits). */
export const ACTIVE_WINDOW_MS = 2_000
/**
 * Bytes of output log kept per session (about 4096 positions of dim 4096 in F32). A session
 * whose log would grow past it stops logging: it can no longer be replayed from here, and a
 * recovery through it re-prefills instead.
 */
export const OUTPUT_LOG_MAX_BYTES = 64 * 1024 * 1024
/** Longest wait for a stage's answer to a recovery request (`reroute`, or `prepare` of a range it holds). */
export const ACK_TIMEOUT_MS = 10_000
/** Longest wait for a cold replacement to fetch and load its range (`prepare`). */
export const PREPARE_TIMEOUT_MS = 60_000
/** Tries to recover one failure (each escalates: another replacement, then re-prefill). */
export const MAX_RECOVERY_ATTEMPTS = 5
/** First retry delay of a recovery; doubled per attempt, with up to as much again of jitter. */
export const RECOVERY_BACKOFF_MS = 50
/** `reconnect`/`restart`: longest wait for the same peer to be back and serving its range. */
export const RECONNECT_WAIT_MS = 15_000
/** `progressive`: how long the same peer gets to answer before another one is asked (a dropped link answers at once). */
export const QUICK_PREPARE_MS = 500
/** A step's token this late (and at least HANG_AFTER_STEPS usual steps late) makes the head probe the route for a hung peer. */
export const HANG_AFTER_MIN_MS = 250
export const HANG_AFTER_STEPS = 10
/** A hop that does not answer a probe within this long is taken as hung (its event loop is blocked or its process stopped). */
export const HANG_PROBE_MS = 750
/** A mirror promoted while behind waits this long for the frames still on their way before it answers REROUTE_BEHIND. */
export const MIRROR_CATCH_UP_MS = 500
/** Longest wait for every surviving hop to answer a reroute (a live stage answers at once; a promoted mirror may wait MIRROR_CATCH_UP_MS). */
export const REROUTE_ACK_MS = 2_000
/**
 * Stage messages (frames and control messages) one remote peer may send a stage server per
 * second, sustained; more are refused (`RATE_LIMITED`). A session step is one frame per stage,
 * so this is far above what a pipeline of real stages reaches (see the pipeline README).
 */
export const MAX_MESSAGES_PER_SECOND = 20_000
/**
 * Messages one remote peer may send in a burst above the rate: a replay sends a session's whole
 * output log at once (at most the context length of entries, and OUTPUT_LOG_MAX_BYTES).
 */
export const MESSAGE_BURST = 100_000
/**
 * Bytes of frames from one remote peer received and not yet computed; a frame past it fails its
 * session (`BYTES_IN_FLIGHT`). Four times OUTPUT_LOG_MAX_BYTES, the most one session's replay
 * or prompt can queue.
 */
export const MAX_BYTES_IN_FLIGHT = 4 * OUTPUT_LOG_MAX_BYTES
/** Refusals answered per second that one remote peer's messages caused; the rest are counted only. */
export const REFUSAL_REPLIES_PER_SECOND = 100
export const REFUSAL_REPLY_BURST = 1_000
