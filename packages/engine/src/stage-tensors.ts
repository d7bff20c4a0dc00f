import { MissingFieldError } from '@shardmesh/model'
import type { Tensor } from '@shardmesh/model'
import { StageConfigError } from './errors.ts'
import type { TensorSource } from './types.ts'

/** The tensor `name` with exactly `shape`, or an error naming it (every backend checks the same way). */
export function requireTensor (tensors: TensorSource, name: string, shape: number[]): Tensor {
  const t = tensors.get(name)
  if (t === undefined) throw new MissingFieldError(`tensor ${name} is missing from the stage's weights`)
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new StageConfigError(`tensor ${name} has shape [${t.shape.join(', ')}], the model config needs [${shape.join(', ')}]`)
  }
  return t
}
