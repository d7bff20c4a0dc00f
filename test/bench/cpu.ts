/**
 * CPU engine benchmark: prefill and decode tokens/s, peak memory, and for the ~100M
 * synthetic model the ratio of decode time per token to the time this machine takes to
 * stream the weights from memory once with the same number of threads (`bandwidth.ts`).
 * Each case runs in its own child process so its peak RSS is its own. Prints a table and
 * one JSON line per case. Timings are medians of the case's repetitions.
 *
 *   pnpm bench                       # all cases
 *   pnpm bench stories260K           # one case
 *
 * The 100M cases' weights are synthetic (SYNTHETIC_PRESETS['synthetic-100m'], 109.5M
 * parameters); the stories260K case is single-threaded, as the issue's target is. It is
 * also timed the way llama2.c's run.c times itself (BOS, then 255 greedy positions, the
 * timer started after position 0, tokens checked against the golden file) and run.c itself
 * runs the same steps in the same benchmark run (`llama2c.ts`), for a ratio. `-q8_0-int`
 * cases run the opt-in `quant: 'q8_0'` path (int8 activations, approximate); the others are
 * the exact path.
 */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { cpuBackend } from '@shardmesh/engine'
import { quantizeCheckpoint, syntheticModel, SYNTHETIC_PRESETS } from '@shardmesh/model'
import { loadModel } from '@shardmesh/model/node'
import type { Checkpoint } from '@shardmesh/model'
import { storiesDir } from '../fixtures.ts'
import { readBandwidth } from './bandwidth.ts'
import { runLlama2c } from './llama2c.ts'
import type { RunCOutcome } from './llama2c.ts'

interface CaseResult {
  case: string
  threads: number
  weightBytes: number
  promptTokens: number
  decodeTokens: number
  prefillTokensPerSecond: number
  decodeTokensPerSecond: number
  /** Median ms per decoded token over the repetitions. */
  decodeMsPerToken: number
  /** ms to read weightBytes once at this machine's read bandwidth measured with `threads` threads. */
  streamMsPerToken?: number
  readBandwidthGBs?: number
  /** Decode tok/s timed like run.c (BOS, then RUNC_STEPS - 1 greedy positions), median of the repetitions. */
  runcStyleTokensPerSecond?: number
  quant?: 'q8_0'
  peakRssMB: number
}

interface Case { load: () => Promise<Checkpoint>, prompt: number, decode: number, stream: boolean, reps: number, threads: number, quant?: 'q8_0', runc?: boolean }

/** Positions of the run.c comparison: the golden file's 256-step case with no prompt. */
const RUNC_STEPS = 256
/** run.c runs per build (each a fraction of a second; its timer counts whole milliseconds). */
const RUNC_REPS = 9
interface GoldenCase { prompt: string, steps: number, output_tokens: number[], text: string }
const goldenRuncCase = (): GoldenCase => {
  const golden = JSON.parse(readFileSync(join(storiesDir(), 'golden.json'), 'utf8')) as { cases: GoldenCase[] }
  const c = golden.cases.find(c => c.prompt === '' && c.steps === RUNC_STEPS)
  if (c === undefined) throw new Error(`golden.json has no empty-prompt case of ${RUNC_STEPS} steps`)
  return c
}

const stories = async (): Promise<Checkpoint> => await loadModel(join(storiesDir(), 'stories260K.bin'), { tokenizerPath: join(storiesDir(), 'tok512.bin') })
const m100 = (dtype: 'F32' | 'Q8_0' | 'Q4_0') => async (): Promise<Checkpoint> => {
  const model = syntheticModel(SYNTHETIC_PRESETS['synthetic-100m'])
  return dtype === 'F32' ? model : quantizeCheckpoint(model, dtype)
}
const big = { prompt: 16, decode: 16, stream: true, reps: 3 }

const cases: Record<string, Case> = {
  stories260K: { load: stories, prompt: 32, decode: 400, stream: false, reps: 5, threads: 1, runc: true },
  'synthetic-100m-f32': { load: m100('F32'), ...big, threads: 1 },
  'synthetic-100m-f32-2t': { load: m100('F32'), ...big, threads: 2 },
  /** A long context: attention over 1024 positions (prefill is quadratic in them). */
  'synthetic-100m-f32-ctx1024': { load: m100('F32'), ...big, prompt: 1024, threads: 1 },
  'synthetic-100m-q8_0': { load: m100('Q8_0'), ...big, threads: 1 },
  'synthetic-100m-q8_0-2t': { load: m100('Q8_0'), ...big, threads: 2 },
  'synthetic-100m-q8_0-int': { load: m100('Q8_0'), ...big, threads: 1, quant: 'q8_0' },
  'synthetic-100m-q8_0-int-2t': { load: m100('Q8_0'), ...big, threads: 2, quant: 'q8_0' },
  'synthetic-100m-q4_0-2t': { load: m100('Q4_0'), ...big, threads: 2 }
}

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}

async function runCase (name: string): Promise<CaseResult> {
  const c = cases[name]
  const model = await c.load()
  const { config } = model
  let weightBytes = 0
  for (const t of model.tensors.values()) weightBytes += t.data.byteLength
  const stage = await cpuBackend({ threads: c.threads, quant: c.quant }).createStage({ config, layers: [0, config.nLayers], tensors: model.tensors })
  const prompt = Array.from({ length: c.prompt }, (_, i) => 1 + ((i * 37) % (config.vocabSize - 1)))
  const prefill: number[] = []
  const decode: number[] = []
  for (let rep = 0; rep < c.reps; rep++) {
    const session = stage.createSession()
    const t0 = performance.now()
    let out = await session.forward({ position: 0, tokens: prompt }, { sample: {} })
    const t1 = performance.now()
    for (let i = 0; i < c.decode; i++) out = await session.forward({ position: c.prompt + i, tokens: [out.token!] }, { sample: {} })
    const t2 = performance.now()
    prefill.push(t1 - t0)
    decode.push((t2 - t1) / c.decode)
  }
  const result: CaseResult = {
    case: name,
    threads: c.threads,
    weightBytes,
    promptTokens: c.prompt,
    decodeTokens: c.decode,
    prefillTokensPerSecond: c.prompt / (median(prefill) / 1000),
    decodeTokensPerSecond: 1000 / median(decode),
    decodeMsPerToken: median(decode),
    peakRssMB: process.resourceUsage().maxRSS / 1024
  }
  if (c.quant !== undefined) result.quant = c.quant
  if (c.runc === true) {
    const golden = goldenRuncCase()
    const rates: number[] = []
    for (let rep = 0; rep < c.reps; rep++) {
      const session = stage.createSession()
      let out = await session.forward({ position: 0, tokens: [1] }, { sample: {} })
      const tokens = [out.token!]
      const t0 = performance.now()
      for (let pos = 1; pos < RUNC_STEPS; pos++) {
        out = await session.forward({ position: pos, tokens: [out.token!] }, { sample: {} })
        tokens.push(out.token!)
      }
      rates.push((RUNC_STEPS - 1) / ((performance.now() - t0) / 1000))
      if (tokens.join() !== golden.output_tokens.join()) throw new Error('stories260K: the greedy tokens differ from run.c\'s golden ones')
    }
    result.runcStyleTokensPerSecond = median(rates)
  }
  if (c.stream) {
    const bw = await readBandwidth(c.threads)
    result.readBandwidthGBs = bw / 1e9
    result.streamMsPerToken = weightBytes / bw * 1000
  }
  await stage.close()
  return result
}

const self = fileURLToPath(import.meta.url)
const [child] = process.argv.slice(2).filter(a => a.startsWith('--case=')).map(a => a.slice(7))
if (child !== undefined) {
  process.stdout.write(JSON.stringify(await runCase(child)) + '\n')
} else {
  const wanted = process.argv.slice(2).filter(a => !a.startsWith('-'))
  const names = wanted.length > 0 ? wanted : Object.keys(cases)
  const rows: CaseResult[] = []
  let runc: RunCOutcome | undefined
  for (const name of names) {
    if (cases[name] === undefined) throw new Error(`unknown case ${name}; cases: ${Object.keys(cases).join(', ')}`)
    const out = execFileSync(process.execPath, [self, `--case=${name}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
    const r = JSON.parse(out.trim().split('\n').pop()!) as CaseResult
    rows.push(r)
    process.stdout.write(JSON.stringify(r) + '\n')
    if (cases[name].runc === true) {
      const dir = storiesDir()
      runc = runLlama2c(join(dir, 'stories260K.bin'), join(dir, 'tok512.bin'), RUNC_STEPS, RUNC_REPS, goldenRuncCase().text)
      process.stdout.write(JSON.stringify({ runc }) + '\n')
    }
  }
  const f = (x: number | undefined, d = 1): string => x === undefined ? '-' : x.toFixed(d)
  process.stdout.write('\nratio: decode ms/token over stream ms (the weights read once at the bandwidth of the same number of threads)\n')
  process.stdout.write('case                      weights MB  prefill tok/s  decode tok/s  ms/token  stream ms  ratio  peak RSS MB\n')
  for (const r of rows) {
    const ratio = r.streamMsPerToken === undefined ? undefined : r.decodeMsPerToken / r.streamMsPerToken
    process.stdout.write(`${r.case.padEnd(26)}${f(r.weightBytes / 1e6).padStart(10)}${f(r.prefillTokensPerSecond).padStart(15)}${f(r.decodeTokensPerSecond).padStart(14)}${f(r.decodeMsPerToken, 2).padStart(10)}${f(r.streamMsPerToken, 2).padStart(11)}${f(ratio, 2).padStart(7)}${f(r.peakRssMB, 0).padStart(13)}\n`)
  }
  const stories = rows.find(r => r.runcStyleTokensPerSecond !== undefined)
  if (stories !== undefined && runc !== undefined) {
    process.stdout.write(`\nstories260K, BOS + ${RUNC_STEPS - 1} greedy positions, timed as run.c times itself (median of the runs):\n`)
    process.stdout.write(`  this engine (1 thread, exact f32): ${f(stories.runcStyleTokensPerSecond)} tok/s\n`)
    if (!runc.ran) process.stdout.write(`  llama2.c run.c: not run: ${runc.reason}\n`)
    else {
      for (const b of runc.results) process.stdout.write(`  llama2.c run.c, ${b.build}: ${f(b.tokensPerSecond)} tok/s → this engine is ${(stories.runcStyleTokensPerSecond! / b.tokensPerSecond).toFixed(2)}× run.c\n`)
      process.stdout.write(`  (run.c source sha256 ${runc.sha256.slice(0, 16)}…)\n`)
    }
  }
}
