/** Why one provider failed to deliver a file (an attempt; the fetch moves on to the next provider). */
export type FailureReason = 'dial' | 'missing' | 'stalled' | 'tampered' | 'error'

/** A manifest's bytes are not a shardmesh model manifest, or contradict themselves; names the field. */
export class InvalidManifestError extends Error {
  name = 'InvalidManifestError'
}

/** A string that should be a CID is not one. */
export class InvalidCidError extends Error {
  name = 'InvalidCidError'
}

/** A provider given as text is neither a peer id nor a multiaddr ending in /p2p/<peer id>. */
export class InvalidProviderError extends Error {
  name = 'InvalidProviderError'
}

/** Nobody is known to hold the content: no `providers` given and no mesh member announces it. */
export class NoProvidersError extends Error {
  name = 'NoProvidersError'
}

/** Every provider was tried and none delivered the content; `attempts` says why each failed. */
export class ContentUnavailableError extends Error {
  name = 'ContentUnavailableError'
  readonly attempts: Array<{ provider: string, reason: FailureReason, message: string }>
  constructor (message: string, attempts: Array<{ provider: string, reason: FailureReason, message: string }>) {
    super(message)
    this.attempts = attempts
  }
}

/** The caller's signal aborted a fetch; `cause` is the signal's reason. */
export class FetchAbortedError extends Error {
  name = 'FetchAbortedError'
}

/** A part (or file) was read from the local store only, and some of its blocks are not there. */
export class PartNotHeldError extends Error {
  name = 'PartNotHeldError'
}

/** The weights node is used before `start()` or after `stop()`, or without what the call needs. */
export class WeightsStateError extends Error {
  name = 'WeightsStateError'
}

/** An attempt's abort reason: the provider sent a block whose hash matches no block we asked for. */
export class TamperedBlockError extends Error {
  name = 'TamperedBlockError'
}

/** An attempt's abort reason: no block arrived from the provider within the stall timeout. */
export class ProviderStalledError extends Error {
  name = 'ProviderStalledError'
}

/** Writing fetched blocks to the cache (IndexedDB) failed; the first failure is the cause. */
export class CacheWriteError extends Error {
  name = 'CacheWriteError'
}
