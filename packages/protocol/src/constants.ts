/** First two bytes of every frame: "SM". */
export const FRAME_MAGIC = 0x4d53
/** Wire version; a peer refuses frames of another version with a clear error. 2: the flags field. */
export const FRAME_VERSION = 2
/** Flag bit: more positions of this step's input follow in later frames (a head stage does not sample). */
export const FLAG_PARTIAL = 1
/**
 * Flag bit: a replayed position from an upstream output log (recovery): the stage rebuilds its
 * KV cache and output log, forwards only to hops that are being rebuilt too, and never samples.
 */
export const FLAG_REPLAY = 2
/** Fixed part of the header, before the shape dims. */
export const HEADER_BYTES = 36
/** Largest frame a peer accepts unless told otherwise (a 2048-position F32 prefill of dim 8192 is 64 MiB). */
export const DEFAULT_MAX_FRAME_BYTES = 64 * 1024 * 1024
/** Most dimensions a payload may have. */
export const MAX_RANK = 4
/** Session ids are 16 random bytes. */
export const SESSION_ID_BYTES = 16
