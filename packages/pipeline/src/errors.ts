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
  constructor (code: string, message: string, peerId: string) {
    super(message)
    this.code = code
    this.peerId = peerId
  }
}

/** A peer of the route could not be reached, or its stream broke. */
export class StageUnreachableError extends Error {
  name = 'StageUnreachableError'
}

/** Stage server or driver used before `start()` or after `stop()`. */
export class NotStartedError extends Error {
  name = 'NotStartedError'
}
