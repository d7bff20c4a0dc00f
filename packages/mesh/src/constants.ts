/** Defaults of the mesh. Every one can be overridden through `MeshInit.timing` or the init. */

/** Topic names are `/<prefix>/<meshId>/<plane>/1`. */
export const TOPIC_PREFIX = 'shardmesh'
/** @default mesh id when none is given. */
export const DEFAULT_MESH_ID = 'default'

/** Membership announcements (heartbeats of every peer). */
export const ANNOUNCE_INTERVAL_MS = 400
/**
 * In larger meshes the period grows to `alive members × this` (and the silence thresholds
 * with it), so membership traffic per peer stays bounded: 50 peers announce every 2 s.
 */
export const ANNOUNCE_PER_MEMBER_MS = 40
/** Announcements carry the full profile (addresses, capabilities, layers) every this many… */
export const FULL_ANNOUNCE_EVERY = 8
/** …and for this many at start (and whenever the profile changes or a new member appears). */
export const FULL_ANNOUNCES_AT_START = 3
/** Announce early after the state version changed (acks for the coordinator), at most this often. */
export const EARLY_ANNOUNCE_MIN_GAP_MS = 100
/** Silent for this long: suspect. */
export const SUSPECT_AFTER_MS = 1200
/** Silent for this long: dead. */
export const DEAD_AFTER_MS = 2000
/** All connections to a member closed and silent for this long since: dead. */
export const DISCONNECT_DEAD_AFTER_MS = 600
/** How often statuses are re-evaluated. */
export const SWEEP_INTERVAL_MS = 100
/** Dead members are forgotten by the local table after this long. */
export const FORGET_DEAD_AFTER_MS = 60_000

/** The coordinator's heartbeat period (DESIGN §5). */
export const HEARTBEAT_INTERVAL_MS = 250
/** A follower that misses heartbeats for a random time in [min, max] starts an election (DESIGN §5). */
export const ELECTION_TIMEOUT_MIN_MS = 1000
export const ELECTION_TIMEOUT_MAX_MS = 2000
/** After the coordinator's connection drops, the timeout is shortened to a random time in [min, max]. */
export const FAST_ELECTION_MIN_MS = 150
export const FAST_ELECTION_MAX_MS = 450
/**
 * A peer refuses (pre-)votes while it heard its coordinator within this window and still
 * sees it alive, so a peer that merely lost its own link cannot depose a healthy coordinator.
 */
export const LEASE_MS = 750
/** A coordinator that has not heard from a quorum of its members for this long steps down. */
export const CHECK_QUORUM_MS = 1000
/** How long a new coordinator waits for a newer snapshot held by another peer. */
export const SYNC_TIMEOUT_MS = 1000
/** Followers ask for a snapshot at most this often. */
export const SYNC_REQUEST_MIN_GAP_MS = 300
/** The coordinator removes a member from the voting configuration after it has been dead this long. */
export const REMOVE_DEAD_AFTER_MS = 2000

/** The coordinator publishes a full snapshot every this many log entries. */
export const SNAPSHOT_EVERY = 32
/** Log entries kept beside the last snapshot (for duplicate and conflict detection). */
export const LOG_WINDOW = 256
/** Terms of the election history kept in memory. */
export const HISTORY_LIMIT = 1024

/** Connections kept open to other members (discovery dials until it has this many). */
export const TARGET_CONNECTIONS = 6
/** Discovery tops up connections this often. */
export const DISCOVERY_INTERVAL_MS = 1000
/** A failed dial to a member is retried after this long, doubled per failure up to the max. */
export const DIAL_BACKOFF_MS = 500
export const DIAL_BACKOFF_MAX_MS = 4000
export const DIAL_TIMEOUT_MS = 10_000

/** Largest message accepted per topic (bytes of the JSON payload). */
export const MAX_MEMBERSHIP_BYTES = 16 * 1024
export const MAX_ELECTION_BYTES = 2 * 1024
export const MAX_STATE_BYTES = 1024 * 1024
/** Largest value of one `set` transaction (bytes of its JSON). */
export const MAX_VALUE_BYTES = 64 * 1024
/** Largest gossipsub RPC frame read from a stream. */
export const MAX_RPC_BYTES = 2 * 1024 * 1024

/**
 * Largest yamux receive window a tab grants one stream (yamux's default 16 MiB). A tab's
 * main thread decrypts and parses at ~16 MB/s, and WebSockets have no read backpressure:
 * with 16 MiB windows a bulk sender (a provider's bitswap) queued a second or more of bytes
 * ahead of every ping, the sender's connection monitor (1–2 s) closed the connection, and
 * weight fetches into tabs stalled. 1 MiB keeps that queue short (test/bench/weights-tab-profile.ts).
 */
export const TAB_MAX_STREAM_WINDOW = 1024 * 1024

/** libp2p connection monitor (DESIGN §2): ping every second, give up after 1–2 s. */
export const PING_INTERVAL_MS = 1000
export const PING_TIMEOUT_MIN_MS = 1000
export const PING_TIMEOUT_MAX_MS = 2000
