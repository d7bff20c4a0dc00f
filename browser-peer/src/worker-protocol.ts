// Messages between the page (libp2p, the pipeline) and its compute Worker (the engine).
import type { ForwardOptions, StageInit, StageInput, StageOutput } from '@shardmesh/engine'
import type { Tensor } from '@shardmesh/model'

/** A stage's init without the tensor map: tensors travel as a list of copies. */
export type WireStageInit = Omit<StageInit, 'tensors'> & { tensors: Tensor[] }
export type WireOptions = Omit<ForwardOptions, 'signal'>

export type Request =
  | { op: 'init', backend: 'webgpu' | 'cpu' }
  | { op: 'createStage', stage: number, init: WireStageInit }
  | { op: 'createSession', stage: number, session: number }
  | { op: 'forward', session: number, input: StageInput, options: WireOptions }
  | { op: 'forwardBatch', stage: number, items: Array<{ session: number, input: StageInput, options: WireOptions }> }
  | { op: 'truncate', session: number, position: number }
  | { op: 'closeSession', session: number }
  | { op: 'closeStage', stage: number }

export interface WireError { name: string, message: string, reason?: string }

/** A forward's outcome with the session's position after it (success or not). */
export type WireResult = { ok: true, output: StageOutput, position: number } | { ok: false, error: WireError, position: number }

export type Response = { id: number, ok: true, value: unknown } | { id: number, ok: false, error: WireError }
