import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { expect } from 'vitest'
import type { Checkpoint, Tensor } from '@shardmesh/model'
import { loadModel } from '@shardmesh/model/node'
import { generate } from '../src/index.ts'
import type { Backend, SamplingParams, Stage } from '../src/index.ts'
import { storiesDir } from '../../../test/fixtures.ts'

/**
 * Shared by the CPU and WebGPU unit-split tests: stories260K, its golden greedy case, and
 * chains of stages cut at unit boundaries.
 */

export interface GoldenCase {
  prompt: string
  steps: number
  prompt_tokens: number[]
  num_prompt_tokens: number
  generated_tokens: number[]
  full_sequence: number[]
}

export async function stories (): Promise<{ model: Checkpoint, golden: GoldenCase }> {
  const dir = storiesDir()
  const cases = (JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf8')) as { cases: GoldenCase[] }).cases
  return { model: await loadModel(join(dir, 'stories260K.gguf')), golden: cases.find(c => c.prompt === 'Once upon a time')! }
}

/** The cuts of `2·nLayers` units into two stages at every inner boundary b: `[0, b), [b, 2n)`. */
export function everyTwoWayCut (nLayers: number): Array<Array<[number, number]>> {
  return Array.from({ length: 2 * nLayers - 1 }, (_, i) => [[0, i + 1], [i + 1, 2 * nLayers]])
}

/** Every unit its own stage. */
export function singleUnits (nLayers: number): Array<[number, number]> {
  return Array.from({ length: 2 * nLayers }, (_, u) => [u, u + 1])
}

export async function chain (backend: Backend, model: Checkpoint, ranges: Array<[number, number]>, tensors: Pick<Map<string, Tensor>, 'get'> = model.tensors): Promise<Stage[]> {
  const stages: Stage[] = []
  for (const units of ranges) stages.push(await backend.createStage({ config: model.config, layers: [0, 0], units, tensors }))
  return stages
}

export async function closeAll (stages: Stage[]): Promise<void> {
  for (const s of stages) await s.close()
}

/**
 * Every two-way cut of the model prefills `sequence` to the whole model's logits (`want`), and
 * hands on at its cut the residual stream a chain of one-unit stages has there, bit for bit;
 * `each` checks more of a cut's chain (with the residual stream at the cut) before it closes.
 */
export async function expectEveryCutExact (backend: Backend, model: Checkpoint, sequence: number[], want: { logits: Float32Array }, each: (stages: Stage[], cut: number, atCut: Float32Array) => Promise<void> = async () => {}): Promise<void> {
  const n = model.config.nLayers
  const singles = await chain(backend, model, singleUnits(n))
  const after = await prefill(singles, sequence)
  expect(firstDiff(after.logits, want.logits), 'one stage per unit: logits').toBe(-1)
  for (const cut of everyTwoWayCut(n)) {
    const b = cut[0][1]
    const stages = await chain(backend, model, cut)
    const got = await prefill(stages, sequence)
    expect(firstDiff(got.hidden[0], after.hidden[b - 1]), `cut at unit ${b}: hidden states`).toBe(-1)
    expect(firstDiff(got.logits, want.logits), `cut at unit ${b}: logits`).toBe(-1)
    await each(stages, b, after.hidden[b - 1])
    await closeAll(stages)
  }
  await closeAll(singles)
}

/** One prefill of `tokens` through the chain: the hidden states each stage emits and all logits. */
export async function prefill (stages: Stage[], tokens: number[]): Promise<{ hidden: Float32Array[], logits: Float32Array }> {
  const sessions = stages.map(s => s.createSession())
  const hidden: Float32Array[] = []
  let out = await sessions[0].forward({ position: 0, tokens }, { allLogits: true })
  for (let i = 1; i < sessions.length; i++) {
    hidden.push(out.hidden!)
    out = await sessions[i].forward({ position: 0, hidden: out.hidden! }, { allLogits: true })
  }
  for (const s of sessions) s.close()
  return { hidden, logits: out.logits! }
}

/** The golden case's generation through the chain (run.c's step count unless `maxTokens`; greedy unless `sampling`). */
export async function generated (stages: Stage[], model: Checkpoint, golden: GoldenCase, sampling?: SamplingParams, maxTokens = golden.steps - golden.num_prompt_tokens + 1): Promise<number[]> {
  const result = await generate({
    sessions: stages.map(s => s.createSession()),
    promptTokens: golden.prompt_tokens,
    maxTokens,
    contextLength: model.config.contextLength,
    stopIds: model.config.stopIds,
    sampling
  })
  return result.tokens
}

/** `tensors` without the named tensors of `layer`, e.g. its attention half. */
export function without (tensors: Map<string, Tensor>, layer: number, names: string[]): Map<string, Tensor> {
  const left = new Map(tensors)
  for (const name of names) {
    if (!left.delete(`layers.${layer}.${name}`)) throw new Error(`layers.${layer}.${name} is not in the checkpoint`)
  }
  return left
}

export const ATTENTION = ['attention_norm', 'wq', 'wk', 'wv', 'wo']
export const FFN = ['ffn_norm', 'w1', 'w2', 'w3']

/** -1 when `a` and `b` hold the same bits, else the first index where they differ (or the shorter length). */
export function firstDiff (a: Float32Array, b: Float32Array): number {
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length)
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length)
  const n = Math.min(x.length, y.length)
  for (let i = 0; i < n; i++) if (x[i] !== y[i]) return i
  return x.length === y.length ? -1 : n
}
