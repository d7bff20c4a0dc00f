/**
 * CPU engine benchmark: prefill and decode tokens/s, peak memory, and for the ~100M
 * synthetic model the ratio of decode time per token to the time this machine takes to
 * stream the weights from memory once. Each case runs in its own child process so its peak
 * RSS is its own. Prints a table and one JSON line per case.
 *
 *   pnpm bench                       # all cases
 *   pnpm bench stories260K           # one case
 *
 * The 100M cases' weights are synthetic (SYNTHETIC_PRESETS['synthetic-100m'], 109.5M
 * parameters); the stories260K case is single-threaded, as the issue's target is.
 */
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { cpuBackend } from '@shardmesh/engine'
import { quantizeCheckpoint, syntheticModel, SYNTHETIC_PRESETS } from '@shardmesh/model'
import { loadModel } from '@shardmesh/model/node'
import type { Checkpoint } from '@shardmesh/model'
import { storiesDir } from '../fixtures.ts'

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
  /** ms to read weightBytes once at this machine's measured single-thread read bandwidth. */
  streamMsPerToken?: number
  readBandwidthGBs?: number
  peakRssMB: number
}

interface Case { load: () => Promise<Checkpoint>, prompt: number, decode: number, stream: boolean, reps: number, threads: number }

const stories = async (): Promise<Checkpoint> => await loadModel(join(storiesDir(), 'stories260K.bin'), { tokenizerPath: join(storiesDir(), 'tok512.bin') })
const m100 = (dtype: 'F32' | 'Q8_0' | 'Q4_0') => async (): Promise<Checkpoint> => {
  const model = syntheticModel(SYNTHETIC_PRESETS['synthetic-100m'])
  return dtype === 'F32' ? model : quantizeCheckpoint(model, dtype)
}
const big = { prompt: 16, decode: 16, stream: true, reps: 3 }

const cases: Record<string, Case> = {
  stories260K: { load: stories, prompt: 32, decode: 400, stream: false, reps: 5, threads: 1 },
  'synthetic-100m-f32': { load: m100('F32'), ...big, threads: 1 },
  'synthetic-100m-f32-2t': { load: m100('F32'), ...big, threads: 2 },
  /** A long context: attention over 1024 positions (prefill is quadratic in them). */
  'synthetic-100m-f32-ctx1024': { load: m100('F32'), ...big, prompt: 1024, threads: 1 },
  'synthetic-100m-q8_0': { load: m100('Q8_0'), ...big, threads: 1 },
  'synthetic-100m-q8_0-2t': { load: m100('Q8_0'), ...big, threads: 2 },
  'synthetic-100m-q4_0-2t': { load: m100('Q4_0'), ...big, threads: 2 }
}

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}

/** Single-thread memory read bandwidth: memchr over a buffer far larger than the caches. */
function readBandwidth (): number {
  const buf = Buffer.alloc(512 * 1024 * 1024, 2) // written, so no page is the shared zero page
  const times: number[] = []
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now()
    buf.indexOf(1)
    times.push(performance.now() - t0)
  }
  return buf.length / (median(times) / 1000)
}

async function runCase (name: string): Promise<CaseResult> {
  const c = cases[name]
  const model = await c.load()
  const { config } = model
  let weightBytes = 0
  for (const t of model.tensors.values()) weightBytes += t.data.byteLength
  const stage = await cpuBackend({ threads: c.threads }).createStage({ config, layers: [0, config.nLayers], tensors: model.tensors })
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
  if (c.stream) {
    const bw = readBandwidth()
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
  for (const name of names) {
    if (cases[name] === undefined) throw new Error(`unknown case ${name}; cases: ${Object.keys(cases).join(', ')}`)
    const out = execFileSync(process.execPath, [self, `--case=${name}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
    const r = JSON.parse(out.trim().split('\n').pop()!) as CaseResult
    rows.push(r)
    process.stdout.write(JSON.stringify(r) + '\n')
  }
  const f = (x: number | undefined, d = 1): string => x === undefined ? '-' : x.toFixed(d)
  process.stdout.write('\ncase                  weights MB  prefill tok/s  decode tok/s  ms/token  stream ms  ratio  peak RSS MB\n')
  for (const r of rows) {
    const ratio = r.streamMsPerToken === undefined ? undefined : r.decodeMsPerToken / r.streamMsPerToken
    process.stdout.write(`${r.case.padEnd(22)}${f(r.weightBytes / 1e6).padStart(10)}${f(r.prefillTokensPerSecond).padStart(15)}${f(r.decodeTokensPerSecond).padStart(14)}${f(r.decodeMsPerToken, 2).padStart(10)}${f(r.streamMsPerToken, 2).padStart(11)}${f(ratio, 2).padStart(7)}${f(r.peakRssMB, 0).padStart(13)}\n`)
  }
}
