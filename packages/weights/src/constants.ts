/** Defaults of the weights package. Every one can be overridden through the init or the call's options. */

/**
 * IPIP-499 CID profile for imports: CIDv1, raw leaves, 1 MiB chunks, up to 1024 links per
 * node. Fewer, larger blocks than the 2015 profile (256 KiB): fewer bitswap round trips.
 */
export const IMPORT_PROFILE = 'unixfs-v1-2025'

/** `format` field of a manifest. */
export const MANIFEST_FORMAT = 'shardmesh-model'
export const MANIFEST_VERSION = 1
/** A manifest larger than this is refused before parsing. */
export const MAX_MANIFEST_BYTES = 16 * 1024 * 1024
/** A tokenizer file larger than this is refused before parsing. */
export const MAX_TOKENIZER_BYTES = 64 * 1024 * 1024

/** Parts fetched at the same time. */
export const PART_CONCURRENCY = 4
/** Blocks of one part requested at the same time. */
export const BLOCK_CONCURRENCY = 8
/** An attempt that receives no block from its provider for this long moves to the next provider. */
export const STALL_TIMEOUT_MS = 15_000
/**
 * A provider's bitswap gives a message of blocks this long to reach the peer that wants them
 * (@helia/bitswap's default is 10 s, queueing included). A slow receiver (a busy tab takes
 * ~16 MB/s; up to 32 wanted 1 MiB blocks go in one message) can miss that, and bitswap never
 * resends the blocks of a send that failed: the fetch would stall.
 */
export const BITSWAP_MESSAGE_SEND_TIMEOUT_MS = 60_000
/** Dialing one provider gives up after this long. */
export const DIAL_TIMEOUT_MS = 5_000
