/** No assignment of layers to the members fits their memory budgets (or there are no members). */
export class PlanError extends Error {
  name = 'PlanError'
}

/** A custom allocation that does not cover the layers contiguously, names an unknown peer, or overflows a budget. */
export class InvalidAllocationError extends Error {
  name = 'InvalidAllocationError'
}

/** A stage refused or failed one session's input; the session ends, others go on. */
export class StageFailedError extends Error {
  name = 'StageFailedError'
  readonly code: string
  readonly peerId: string
  /** The peer at fault when it is not the one that reported (e.g. its unreachable next hop). */
  readonly blame: string | undefined
  constructor (code: string, message: string, peerId: string, blame?: string) {
    super(message)
    this.code = code
    this.peerId = peerId
    this.blame = blame
  }
}

/** A peer of the route could not be reached, or its stream broke. */
export class StageUnreachableError extends Error {
  name = 'StageUnreachableError'
  readonly peerId: string | undefined
  constructor (message: string, peerId?: string) {
    super(message)
    this.peerId = peerId
  }
}

/** Stage server or driver used before `start()` or after `stop()`. */
export class NotStartedError extends Error {
  name = 'NotStartedError'
}

/** A peer on a session's route was lost (connection closed, member suspect or dead). */
export class HopLostError extends Error {
  name = 'HopLostError'
  readonly peerId: string
  readonly class: 'CONNECTION' | 'CRASH' | 'TIMEOUT'
  /** Local time (performance.now()) of the first sign. */
  readonly at: number
  constructor (peerId: string, cls: 'CONNECTION' | 'CRASH' | 'TIMEOUT', message: string, at = performance.now()) {
    super(message)
    this.peerId = peerId
    this.class = cls
    this.at = at
  }
}

/** A session could not be recovered (level `none`, no replacement, or attempts exhausted). */
export class RecoveryFailedError extends Error {
  name = 'RecoveryFailedError'
  readonly code: string
  readonly cause: Error | undefined
  constructor (code: string, message: string, cause?: Error) {
    super(message)
    this.code = code
    this.cause = cause
  }
}

/** A replacement would compute with other numerics (backend kind or activation dtype) than the stage it replaces. */
export class NumericsMismatchError extends Error {
  name = 'NumericsMismatchError'
}
