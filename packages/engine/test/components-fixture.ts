// What the CPU and WebGPU tests of models made of parts share: the synthetic models, inputs,
// every cut of a component, and chains of encoder and decoder stages on a backend.
import { syntheticEncoderDecoder, syntheticTwoTower } from '@shardmesh/model'
import type { ComponentModel, EncoderDecoderConfig } from '@shardmesh/model'
import { forwardChain } from '../src/index.ts'
import type { ComponentBackend, DecoderStage, EncoderComponent, EncoderInput, EncoderOutput, EncoderStage, SamplingParams, StageOutput } from '../src/index.ts'

export { firstDiff } from './units-fixture.ts'

export const twoTower = syntheticTwoTower()
export const encDec = syntheticEncoderDecoder()
export const encDecConfig = encDec.config as EncoderDecoderConfig
export const TEXT = [1, 17, 42, 99, 150, 7, 3, 199, 64, 12]
export const PROMPT = [1, 5, 77, 23, 180, 42, 9, 130, 66, 2, 11, 190]

/** Every cut of units `[0, total)` into `k` non-empty consecutive ranges. */
export function cuts (total: number, k: number): Array<Array<[number, number]>> {
  if (k === 1) return [[[0, total]]]
  const out: Array<Array<[number, number]>> = []
  for (let b = 1; b <= total - k + 1; b++) {
    for (const rest of cuts(total - b, k - 1)) out.push([[0, b], ...rest.map(([a, c]): [number, number] => [a + b, c + b])])
  }
  return out
}

/** An image of the two-tower model's size, values in [-0.5, 0.5) from a seeded LCG. */
export function pixelsOf (seed: number): Float32Array {
  const image = twoTower.config.kind === 'two_tower' ? twoTower.config.image : undefined!
  const out = new Float32Array(image.imageSize * image.imageSize * image.channels)
  let s = seed
  for (let i = 0; i < out.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    out[i] = s / 2 ** 32 - 0.5
  }
  return out
}

export function nLayersOf (model: ComponentModel, component: string): number {
  return (model.config as unknown as Record<string, { nLayers: number }>)[component].nLayers
}

export const valuesOf = (out: EncoderOutput): Float32Array => 'hidden' in out ? out.hidden : out.embedding

/** The three encoder components with an input each. */
export const ENCODERS: Array<[ComponentModel, EncoderComponent, EncoderInput]> = [
  [twoTower, 'text', { tokens: TEXT }],
  [twoTower, 'image', { pixels: pixelsOf(5) }],
  [encDec, 'encoder', { tokens: PROMPT }]
]

/** Runs `input` through stages over `ranges` (units) of `component` on `backend`; returns what each stage emitted. */
export async function encoderChain (backend: Pick<ComponentBackend, 'createEncoderStage'>, model: ComponentModel, component: EncoderComponent, ranges: Array<[number, number]>, input: EncoderInput): Promise<EncoderOutput[]> {
  const stages: EncoderStage[] = []
  for (const units of ranges) stages.push(await backend.createEncoderStage({ model: model.config, component, layers: [0, 0], units, tensors: model.tensors }))
  const outputs: EncoderOutput[] = []
  let x = input
  for (const stage of stages) {
    const out = await stage.forward(x)
    outputs.push(out)
    if ('hidden' in out) x = { hidden: out.hidden, n: out.n }
  }
  for (const s of stages) await s.close()
  return outputs
}

/** Decoder stages over `ranges` (units) of the encoder–decoder on `backend`. */
export async function decoderChain (backend: Pick<ComponentBackend, 'createDecoderStage'>, ranges: Array<[number, number]>, model: ComponentModel = encDec): Promise<DecoderStage[]> {
  const stages: DecoderStage[] = []
  for (const units of ranges) stages.push(await backend.createDecoderStage({ model: encDecConfig, layers: [0, 0], units, tensors: model.tensors }))
  return stages
}

/** Decodes step by step through the chain, as a pipeline does: start token at position 0, each sampled token next. */
export async function decode (stages: DecoderStage[], memory: { hidden: Float32Array, n: number }, maxTokens: number, sampling: SamplingParams): Promise<{ tokens: number[], logits: Float32Array[] }> {
  const sessions = stages.map(s => s.createSession())
  for (const s of sessions) s.setMemory(memory.hidden, memory.n)
  const tokens: number[] = []
  const logits: Float32Array[] = []
  let token = encDecConfig.decoder.startId!
  for (let position = 0; tokens.length < maxTokens; position++) {
    const out: StageOutput = await forwardChain(sessions, position, [token], { sample: sampling })
    logits.push(out.logits!)
    token = out.token!
    if (encDecConfig.decoder.stopIds!.includes(token)) break
    tokens.push(token)
  }
  return { tokens, logits }
}
