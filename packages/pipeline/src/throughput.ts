import { SYNTHETIC_PRESETS, syntheticModel } from '@shardmesh/model'
import type { Backend, Stage } from '@shardmesh/engine'

type SyntheticModel = ReturnType<typeof syntheticModel>

/**
 * The benchmark every peer runs at join (and the coordinator's audits ask for): greedy decode
 * of a tiny synthetic model, all layers on the peer's backend. One model for every peer, so
 * the figures compare across peers.
 */
export const BENCH_MODEL = 'tiny-gqa2'
export const BENCH_PROMPT = 8
export const BENCH_DECODE = 32
/**
 * The join benchmark decodes for at least this long (ms of wall time), after a warm-up run it
 * discards: a run spans many scheduler periods, so a peer short of CPU measures slower (a
 * 3 ms run fits in the slices a throttled or contended process still gets), and the first,
 * compiling run does not make the first sample of every peer's history an outlier.
 */
export const BENCH_MIN_MS = 100

let model: SyntheticModel | undefined

/** The benchmark model (built once per process: its weights are generated from a seed). */
export function benchModel (): SyntheticModel {
  model ??= syntheticModel(SYNTHETIC_PRESETS[BENCH_MODEL])
  return model
}

/** A stage of the whole benchmark model on `backend`. */
export async function benchStage (backend: Backend): Promise<Stage> {
  const m = benchModel()
  return await backend.createStage({ config: m.config, layers: [0, m.config.nLayers], tensors: m.tensors })
}

/** A prompt of the benchmark model's vocabulary. */
export function defaultBenchPrompt (): number[] {
  return Array.from({ length: BENCH_PROMPT }, (_, i) => 1 + i)
}

/**
 * Prefill `prompt` on a new session of `stage`, then run `steps` greedy decode steps, `rounds`
 * times over (each round rewinds to the prompt: the same tokens again); `ready` runs between
 * the prefill and the decode (an audit answers its auditor there). Returns the tokens (the
 * prefill's, then one per step: `steps + 1`) and the decode rounds' wall time.
 */
export async function benchRun (stage: Stage, prompt: number[], steps: number, options: { rounds?: number, ready?: () => Promise<void> } = {}): Promise<{ tokens: number[], ms: number }> {
  const session = stage.createSession()
  try {
    const first = (await session.forward({ position: 0, tokens: prompt }, { sample: { temperature: 0 } })).token!
    await options.ready?.()
    let tokens: number[] = []
    const t0 = performance.now()
    for (let round = 0; round < (options.rounds ?? 1); round++) {
      session.truncate(prompt.length)
      tokens = [first]
      for (let p = prompt.length; p < prompt.length + steps; p++) {
        tokens.push((await session.forward({ position: p, tokens: [tokens[tokens.length - 1]] }, { sample: { temperature: 0 } })).token!)
      }
    }
    return { tokens, ms: performance.now() - t0 }
  } finally {
    session.close()
  }
}

/**
 * The join benchmark: decode tokens/s on `backend` (one discarded warm-up run, then runs of
 * BENCH_DECODE tokens until BENCH_MIN_MS of decoding). What a peer announces as `throughput`.
 */
export async function measureThroughput (backend: Backend, options: { minMs?: number } = {}): Promise<{ model: string, decodeTokensPerSecond: number }> {
  const stage = await benchStage(backend)
  try {
    const prompt = defaultBenchPrompt()
    await benchRun(stage, prompt, BENCH_DECODE) // warm-up
    let ms = 0
    let tokens = 0
    while (ms < (options.minMs ?? BENCH_MIN_MS)) {
      ms += (await benchRun(stage, prompt, BENCH_DECODE)).ms
      tokens += BENCH_DECODE
    }
    return { model: BENCH_MODEL, decodeTokensPerSecond: Math.round(tokens / (ms / 1000) * 10) / 10 }
  } finally {
    await stage.close()
  }
}
