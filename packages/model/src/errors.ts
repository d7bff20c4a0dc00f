/** A checkpoint file is shorter than its header or tensor table says. */
export class TruncatedCheckpointError extends Error {
  name = 'TruncatedCheckpointError'
}

/** A checkpoint's bytes or metadata contradict themselves (bad magic, shapes, sizes). */
export class CorruptCheckpointError extends Error {
  name = 'CorruptCheckpointError'
}

/** The model architecture is not one this engine runs. */
export class UnsupportedArchitectureError extends Error {
  name = 'UnsupportedArchitectureError'
}

/** A tensor's storage type is not one the engine supports. */
export class UnsupportedTensorTypeError extends Error {
  name = 'UnsupportedTensorTypeError'
}

/** A required tensor or metadata field is missing. */
export class MissingFieldError extends Error {
  name = 'MissingFieldError'
}

/** The input (prompt plus requested tokens) does not fit the model's context. */
export class ContextLengthError extends Error {
  name = 'ContextLengthError'
}

/** Fetching a model over http(s) failed. */
export class DownloadError extends Error {
  name = 'DownloadError'
}
