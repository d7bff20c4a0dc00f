/** Why a frame was refused: a stable code for counters, plus a message for people. */
export type FrameErrorCode = 'TRUNCATED' | 'BAD_MAGIC' | 'BAD_VERSION' | 'BAD_FLAGS' | 'BAD_KIND' | 'BAD_DTYPE' | 'BAD_SHAPE' | 'BAD_LENGTH' | 'TOO_LARGE' | 'NON_FINITE'

/** A frame that does not parse or breaks a limit. Nothing in it is used. */
export class InvalidFrameError extends Error {
  name = 'InvalidFrameError'
  readonly code: FrameErrorCode
  constructor (code: FrameErrorCode, message: string) {
    super(message)
    this.code = code
  }
}

/** A control message that is not valid JSON of a known type and shape. */
export class InvalidControlMessageError extends Error {
  name = 'InvalidControlMessageError'
}

/** A component-protocol message (a pass through a part of a model, its result, an encoder memory) that is malformed. */
export class InvalidComponentMessageError extends Error {
  name = 'InvalidComponentMessageError'
}
