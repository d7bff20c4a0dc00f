// The join benchmark: decode tokens/s of a short real engine run (the Node peer's benchmark,
// so figures compare across peers). Runs where the tab computes (its Worker).
import type { Backend } from '@shardmesh/engine'
import { SYNTHETIC_PRESETS, syntheticModel } from '@shardmesh/model'

const BENCH_MODEL = 'tiny-gqa2'
const BENCH_PROMPT = 8
const BENCH_DECODE = 32

/** Decode tokens/s of the join benchmark on `backend` (tiny synthetic model, all layers, greedy). */
export async function measureThroughput (backend: Backend): Promise<{ model: string, decodeTokensPerSecond: number }> {
  const model = syntheticModel(SYNTHETIC_PRESETS[BENCH_MODEL])
  const stage = await backend.createStage({ config: model.config, layers: [0, model.config.nLayers], tensors: model.tensors })
  try {
    const session = stage.createSession()
    const prompt = Array.from({ length: BENCH_PROMPT }, (_, i) => 1 + i)
    let out = await session.forward({ position: 0, tokens: prompt }, { sample: { temperature: 0 } })
    const t0 = performance.now()
    for (let p = BENCH_PROMPT; p < BENCH_PROMPT + BENCH_DECODE; p++) out = await session.forward({ position: p, tokens: [out.token!] }, { sample: { temperature: 0 } })
    const seconds = (performance.now() - t0) / 1000
    session.close()
    return { model: BENCH_MODEL, decodeTokensPerSecond: Math.round(BENCH_DECODE / seconds * 10) / 10 }
  } finally {
    await stage.close()
  }
}

