/** A gossip message failed validation; `reason` is the counter it is reported under. */
export class InvalidMessageError extends Error {
  name = 'InvalidMessageError'
  readonly reason: string
  constructor (reason: string, message: string) {
    super(message)
    this.reason = reason
  }
}

/** `propose` was called on a peer that is not the coordinator (or lost the role meanwhile). */
export class NotCoordinatorError extends Error {
  name = 'NotCoordinatorError'
}

/** A transaction would make the replicated state larger than the state topic allows. */
export class StateTooLargeError extends Error {
  name = 'StateTooLargeError'
}

/** A transaction is not well formed (unknown op, bad key or value). */
export class InvalidTransactionError extends Error {
  name = 'InvalidTransactionError'
}

/** An init option is out of range. */
export class MeshConfigError extends Error {
  name = 'MeshConfigError'
}

/** The mesh service was used before `start` or after `stop`. */
export class MeshNotStartedError extends Error {
  name = 'MeshNotStartedError'
}
