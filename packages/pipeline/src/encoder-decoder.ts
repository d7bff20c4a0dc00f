import { ComponentPassError, encodePart } from './component.ts'
import type { ComponentEndpoint } from './component.ts'
import type { PipelineGenerateInit, PipelineGenerateResult, SessionDriver } from './driver.ts'
import type { PlanStage } from './plan-types.ts'
import type { RouteHop } from '@shardmesh/protocol'

export interface EncoderDecoderGenerateInit extends Omit<PipelineGenerateInit, 'route' | 'promptTokens' | 'beforeOpen'> {
  components: ComponentEndpoint
  /** The decoder's session driver (configured with the decoder's config). */
  driver: SessionDriver
  /** The encoder's stages (a component plan's `component: 'encoder'` stages): primaries, then standbys on failure. */
  encoder: Array<Pick<PlanStage, 'range' | 'units' | 'primary' | 'standbys'>>
  /** The decoder's route. */
  decoder: RouteHop[]
  addrsOf: (peerId: string) => string[]
  /** Encoder input token ids. */
  input: number[]
  /** The decoder's prompt (its start token, and any forced prefix). */
  start: number[]
  /** Longest wait for the encoder pass. @default 60 s */
  encoderTimeoutMs?: number
}

export interface EncoderDecoderGenerateResult extends PipelineGenerateResult {
  /** Rows of the encoder memory every decoder stage received. */
  memoryRows: number
  /** Encoder passes retried on standbys (each pass is stateless: a retry computes the same memory). */
  encoderRetries: number
}

/**
 * One generation of an encoder–decoder model over its parts' peers: the encoder pass runs
 * along the encoder's stages (component protocol) and its memory comes back to this head once;
 * every decoder stage gets it before the decoder session opens on it — and again before a
 * recovery moves the session to a new stage — then the decoder generates like any pipeline,
 * cross-attending to the memory.
 */
export async function generateEncoderDecoder (init: EncoderDecoderGenerateInit): Promise<EncoderDecoderGenerateResult> {
  const { components, encoder, addrsOf, input, signal } = init
  const pass = await encodePart(components, encoder, 'encoder', { tokens: input }, { addrsOf, signal, timeoutMs: init.encoderTimeoutMs })
  if (!('hidden' in pass.output)) throw new ComponentPassError('BAD_REPLY', 'the encoder answered with an embedding, not its memory')
  const memory = pass.output
  const beforeOpen = async (session: string, route: RouteHop[]): Promise<void> => {
    await Promise.all(route.map(async hop => { await components.sendMemory(hop, session, memory.hidden, memory.n, { signal }) }))
  }
  const { components: _c, driver, encoder: _e, decoder, addrsOf: _a, input: _i, start, encoderTimeoutMs: _t, ...rest } = init
  const result = await driver.generate({ ...rest, route: decoder, promptTokens: start, beforeOpen })
  return { ...result, memoryRows: memory.n, encoderRetries: pass.recoveries }
}
