import { expect } from 'vitest'
import type { ModelConfig } from '@shardmesh/model'
import type { Stage } from '../src/index.ts'

/**
 * The input contract every backend keeps (one `checkInput` serves both): bad input is refused
 * with a named error, advances nothing, and the sessions stay usable. `stage` builds a stage
 * of the backend under test over `config`'s model.
 */
export async function expectBadInputRefused (config: ModelConfig, stage: (layers: [number, number]) => Promise<Stage>): Promise<void> {
  const first = await stage([0, 1])
  const second = await stage([1, 3])
  const session = first.createSession()
  await expect(session.forward({ position: 1, tokens: [1] })).rejects.toMatchObject({ name: 'StageInputError', message: expect.stringMatching(/position 1.*at 0/) })
  await expect(session.forward({ position: 0, tokens: [config.vocabSize] })).rejects.toMatchObject({ name: 'StageInputError', message: expect.stringMatching(/outside the vocabulary/) })
  await expect(session.forward({ position: 0, hidden: new Float32Array(config.dim) })).rejects.toMatchObject({ name: 'StageInputError' })
  await expect(session.forward({ position: 0, tokens: [1] }, { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' })
  const down = second.createSession()
  await expect(down.forward({ position: 0, hidden: new Float32Array(config.dim + 1) })).rejects.toMatchObject({ name: 'StageInputError', message: expect.stringMatching(/whole number of positions/) })
  const nan = new Float32Array(config.dim * 2)
  nan[config.dim + 3] = NaN
  await expect(down.forward({ position: 0, hidden: nan })).rejects.toMatchObject({ name: 'NonFiniteActivationError', message: expect.stringMatching(/position 1/) })
  await expect(down.forward({ position: 0, tokens: [1] })).rejects.toMatchObject({ name: 'StageInputError' })
  expect(() => { session.truncate(1) }).toThrow(expect.objectContaining({ name: 'StageInputError', message: expect.stringMatching(/cannot truncate to position 1: the session holds 0/) }))
  expect(() => { session.truncate(-1) }).toThrow(expect.objectContaining({ name: 'StageInputError' }))
  // nothing above advanced the sessions
  expect(session.position).toBe(0)
  expect(down.position).toBe(0)
  const ok = await session.forward({ position: 0, tokens: [1, 2] })
  expect(ok.hidden!.length).toBe(2 * config.dim)
  const next = await down.forward({ position: 0, hidden: ok.hidden! })
  expect(next.logits!.length).toBe(config.vocabSize)
  await first.close()
  await second.close()
}
