/** A stage got input of the wrong kind, shape or position. */
export class StageInputError extends Error {
  name = 'StageInputError'
}

/** A stage was built with weights or a layer range that do not fit the model. */
export class StageConfigError extends Error {
  name = 'StageConfigError'
}

/** Activations contain NaN or infinity. */
export class NonFiniteActivationError extends Error {
  name = 'NonFiniteActivationError'
}
