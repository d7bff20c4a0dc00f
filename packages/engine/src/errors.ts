/** A stage got input of the wrong kind, shape or position. */
export class StageInputError extends Error {
  name = 'StageInputError'
}

/** A stage was built with weights or a layer range that do not fit the model. */
export class StageConfigError extends Error {
  name = 'StageConfigError'
}

/** A forward pass ran on a stage that was closed (before it or while it ran). */
export class StageClosedError extends Error {
  name = 'StageClosedError'
}

/** Activations contain NaN or infinity. */
export class NonFiniteActivationError extends Error {
  name = 'NonFiniteActivationError'
}

/** Why a WebGPU operation failed. */
export type WebGpuErrorReason = 'no-adapter' | 'device-lost' | 'out-of-memory' | 'validation' | 'limit'

/**
 * The WebGPU backend failed: no adapter, the device was lost (driver reset, tab in the
 * background, `destroy()`), out of GPU memory, a tensor beyond the adapter's limits, or a
 * WebGPU validation error. `reason` says which; the fault-tolerance layer maps every
 * WebGpuError to its WEBGPU class (`classification`).
 */
export class WebGpuError extends Error {
  name = 'WebGpuError'
  readonly classification = 'WEBGPU'
  readonly reason: WebGpuErrorReason

  constructor (reason: WebGpuErrorReason, message: string, options?: ErrorOptions) {
    super(message, options)
    this.reason = reason
  }
}
