/**
 * WebGPU benchmark: per op and end to end, the WebGPU backend's time against the CPU
 * backend's on the same machine, plus — on a real GPU, or when named — decode tokens/s of
 * the ~100M synthetic model with the fraction of the device's memory bandwidth it achieves.
 * Prints one JSON line per measurement and tables. Without a GPU, WebGPU runs on SwiftShader
 * (CPU-emulated): the header says so, and its numbers say nothing about GPUs.
 *
 *   pnpm bench:webgpu                          # ops + stories260K (+ synthetic-100m-* on a real GPU)
 *   pnpm bench:webgpu -- ops                   # per-op only
 *   pnpm bench:webgpu -- synthetic-100m-f32    # named end-to-end cases (even on SwiftShader)
 *
 * Per op: the kernel runs R times in one submission; "gpu wall" is that submission's wall
 * time / R (submission and wait included), "gpu ts" the pass's timestamp span / R where the
 * adapter has timestamp-query; "cpu" is the CPU twin's wall time / R in this process.
 * Shapes are the ~100M model's (dim 768, hidden 2048, 12 heads of 64, vocab 32000).
 */
import { cpus } from 'node:os'
import { join } from 'node:path'
import { cpuBackend, webgpuBackend } from '@shardmesh/engine'
import type { Backend } from '@shardmesh/engine'
import { convertTensor, quantizeCheckpoint, syntheticModel, SYNTHETIC_PRESETS } from '@shardmesh/model'
import type { Checkpoint, MatrixDType, Tensor } from '@shardmesh/model'
import { loadModel } from '@shardmesh/model/node'
import { addInPlace, attention, rmsnorm, rope, RopeTable, swiglu } from '../../packages/engine/src/cpu/kernels.ts'
import { cpuMatrix, readRow } from '../../packages/engine/src/cpu/matrix.ts'
import { matmul } from '../../packages/engine/src/cpu/matmul.ts'
import { argmax } from '../../packages/engine/src/sampling.ts'
import { WebGpuOps } from '../../packages/engine/src/webgpu/ops.ts'
import type { PreparedOp } from '../../packages/engine/src/webgpu/ops.ts'
import { copyBandwidth } from '../../packages/engine/src/webgpu/timing.ts'
import { storiesDir } from '../fixtures.ts'

process.env.VK_ICD_FILENAMES ??= '/usr/lib/chromium/vk_swiftshader_icd.json'

const args = process.argv.slice(2).filter(a => !a.startsWith('-'))
const ops = await WebGpuOps.create()
const info = ops.ctx.info
const device = `${info.fallback ? 'CPU-emulated WebGPU (no GPU): ' : ''}${info.vendor} ${info.architecture} ${info.description}`.trim()
process.stdout.write(`# WebGPU: ${device}; Dawn in Node ${process.version}; CPU: ${cpus()[0]?.model ?? '?'} × ${cpus().length}\n`)
process.stdout.write(`# tuning ${JSON.stringify(ops.ctx.tuning)}\n`)

function rand (n: number, seed: number): Float32Array {
  let s = seed >>> 0
  const out = new Float32Array(n)
  for (let i = 0; i < n; i++) { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; out[i] = s / 2 ** 32 - 0.5 }
  return out
}

function timeCpu (fn: () => void, minMs = 200): number {
  fn()
  let reps = 0
  const t0 = performance.now()
  while (performance.now() - t0 < minMs || reps < 3) { fn(); reps++ }
  return (performance.now() - t0) / reps
}

interface OpRow { op: string, gpuWallMs: number, gpuTimestampMs?: number, cpuMs: number }

async function timeGpu (op: PreparedOp): Promise<{ wallMs: number, gpuMs?: number }> {
  const first = await op.time(1) // compile, first touch
  const reps = Math.max(3, Math.min(200, Math.ceil(200 / Math.max(first.wallMs, 0.05))))
  const t = await op.time(reps)
  op.destroy()
  return t
}

async function benchOps (): Promise<OpRow[]> {
  const dim = 768
  const hidden = 2048
  const heads = 12
  const headDim = 64
  const vocab = 32000
  const rows: OpRow[] = []
  const add = async (op: string, gpu: PreparedOp, cpu: () => void): Promise<void> => {
    const g = await timeGpu(gpu)
    const row: OpRow = { op, gpuWallMs: g.wallMs, gpuTimestampMs: g.gpuMs, cpuMs: timeCpu(cpu) }
    rows.push(row)
    process.stdout.write(JSON.stringify({ kind: 'op', device, ...row }) + '\n')
  }
  const matrix = (dtype: MatrixDType, r: number, c: number): Tensor => convertTensor({ name: `w${r}x${c}`, dtype: 'F32', shape: [r, c], data: new Uint8Array(rand(r * c, r + c).buffer) }, dtype)
  for (const dtype of ['F32', 'F16', 'Q8_0', 'Q4_0'] as MatrixDType[]) {
    const t = matrix(dtype, hidden, dim)
    const gm = ops.upload(t)
    const cm = cpuMatrix(t)
    for (const n of [1, 16]) {
      const x = rand(n * dim, 7)
      const y = new Float32Array(n * hidden)
      await add(`matmul ${dtype} ${hidden}x${dim} n=${n}`, ops.prepareMatmul(gm, x, n), () => matmul(cm, x, n, y))
    }
  }
  {
    const t = matrix('F32', vocab, dim)
    const x = rand(dim, 3)
    const y = new Float32Array(vocab)
    const cm = cpuMatrix(t)
    await add(`matmul F32 ${vocab}x${dim} n=1 (LM head)`, ops.prepareMatmul(ops.upload(t), x, 1), () => matmul(cm, x, 1, y))
    const out = new Float32Array(dim)
    await add(`embedding F32 ${vocab}x${dim} n=1`, ops.prepareEmbedding(ops.upload(t), [1234]), () => readRow(cm, 1234, out))
  }
  {
    const x = rand(dim, 1)
    const w = rand(dim, 2)
    const out = new Float32Array(dim)
    await add(`rmsnorm n=1 dim=${dim}`, ops.prepareRmsnorm(x, w, 1, dim, 1e-5), () => rmsnorm(out, x, w, 1, dim, 1e-5))
  }
  {
    const start = 255
    const q = rand(heads * headDim, 4)
    const k = rand((start + 1) * heads * headDim, 5)
    const table = new RopeTable(headDim, 10000)
    table.ensure(start + 1)
    const shape = { nHeads: heads, nKvHeads: heads, headDim, layout: 'interleaved' as const }
    await add(`rope q+k n=1 ${heads}+${heads} heads x ${headDim}`, ops.prepareRope(q, k, 1, start, shape, 10000), () => {
      rope(q, 1, heads, headDim, start, table, 'interleaved')
      rope(k.subarray(start * heads * headDim), 1, heads, headDim, start, table, 'interleaved')
    })
  }
  for (const [n, start] of [[1, 255], [16, 0]]) {
    const q = rand(n * heads * headDim, 6)
    const k = rand((start + n) * heads * headDim, 7)
    const v = rand((start + n) * heads * headDim, 8)
    const out = new Float32Array(n * heads * headDim)
    const scores = new Float32Array(heads * (start + n))
    const shape = { nHeads: heads, nKvHeads: heads, headDim }
    await add(`attention n=${n} over ${start + n} positions`, ops.prepareAttention(q, k, v, n, start, shape), () => attention(out, q, k, v, n, start, shape, scores))
  }
  {
    const g = rand(hidden, 9)
    const u = rand(hidden, 10)
    await add(`swiglu ${hidden}`, ops.prepareSwiglu(g, u), () => swiglu(g.slice(), u, hidden))
    const x = rand(dim, 11)
    const y = rand(dim, 12)
    await add(`add ${dim}`, ops.prepareAdd(x, y), () => addInPlace(x, y, dim))
  }
  {
    const logits = rand(vocab, 13)
    await add(`argmax ${vocab}`, ops.prepareTopk(logits, 1), () => argmax(logits))
    await add(`top-k ${vocab} k=40 (cpu: the sampler's full sort)`, ops.prepareTopk(logits, 40), () => {
      Array.from({ length: vocab }, (_, i) => i).sort((a, b) => logits[b] - logits[a] || a - b)
    })
  }
  return rows
}

interface E2eRow {
  case: string
  backend: string
  weightBytes: number
  prefillTokensPerSecond: number
  decodeTokensPerSecond: number
  /** weightBytes × decode tokens/s: the bytes of weights streamed per second while decoding. */
  weightGBs: number
}

const e2eCases: Record<string, { load: () => Promise<Checkpoint>, prompt: number, decode: number, realGpuOnly: boolean }> = {
  stories260K: { load: async () => await loadModel(join(storiesDir(), 'stories260K.bin'), { tokenizerPath: join(storiesDir(), 'tok512.bin') }), prompt: 32, decode: 200, realGpuOnly: false },
  'synthetic-100m-f32': { load: async () => syntheticModel(SYNTHETIC_PRESETS['synthetic-100m']), prompt: 16, decode: 32, realGpuOnly: true },
  'synthetic-100m-q8_0': { load: async () => quantizeCheckpoint(syntheticModel(SYNTHETIC_PRESETS['synthetic-100m']), 'Q8_0'), prompt: 16, decode: 32, realGpuOnly: true }
}

async function runE2e (name: string, model: Checkpoint, backend: Backend, decodeSteps: number, promptLength: number): Promise<E2eRow> {
  const { config } = model
  let weightBytes = 0
  for (const t of model.tensors.values()) weightBytes += t.data.byteLength
  const stage = await backend.createStage({ config, layers: [0, config.nLayers], tensors: model.tensors })
  const prompt = Array.from({ length: promptLength }, (_, i) => 1 + ((i * 37) % (config.vocabSize - 1)))
  const warm = stage.createSession() // compiles pipelines, first touch
  await warm.forward({ position: 0, tokens: prompt.slice(0, 2) }, { sample: {} })
  const session = stage.createSession()
  const t0 = performance.now()
  let out = await session.forward({ position: 0, tokens: prompt }, { sample: {} })
  const t1 = performance.now()
  for (let i = 0; i < decodeSteps; i++) out = await session.forward({ position: promptLength + i, tokens: [out.token!] }, { sample: {} })
  const t2 = performance.now()
  await stage.close()
  const decode = decodeSteps / ((t2 - t1) / 1000)
  return { case: name, backend: backend.name, weightBytes, prefillTokensPerSecond: promptLength / ((t1 - t0) / 1000), decodeTokensPerSecond: decode, weightGBs: weightBytes * decode / 1e9 }
}

const f = (x: number | undefined, d = 3): string => x === undefined ? '-' : x >= 100 ? x.toFixed(1) : x.toPrecision(d)
const wantOps = args.length === 0 || args.includes('ops')
const named = args.filter(a => a !== 'ops')
if (wantOps) {
  const rows = await benchOps()
  process.stdout.write(`\nper op on ${device}\nop                                              gpu wall ms   gpu ts ms      cpu ms   cpu/gpu wall\n`)
  for (const r of rows) process.stdout.write(`${r.op.padEnd(48)}${f(r.gpuWallMs).padStart(11)}${f(r.gpuTimestampMs).padStart(12)}${f(r.cpuMs).padStart(12)}${f(r.cpuMs / r.gpuWallMs).padStart(15)}\n`)
}
const caseNames = named.length > 0 ? named : args.length === 0 ? Object.keys(e2eCases).filter(n => !e2eCases[n].realGpuOnly || !info.fallback) : []
if (caseNames.length > 0) {
  const bandwidth = await copyBandwidth(ops.ctx, 256 << 20, 20)
  process.stdout.write(JSON.stringify({ kind: 'bandwidth', device, copyGBs: bandwidth / 1e9 }) + '\n')
  const rows: E2eRow[] = []
  for (const name of caseNames) {
    const c = e2eCases[name]
    if (c === undefined) throw new Error(`unknown case ${name}; cases: ops, ${Object.keys(e2eCases).join(', ')}`)
    const model = await c.load()
    for (const backend of [webgpuBackend(), cpuBackend()]) {
      const r = await runE2e(name, model, backend, backend.name === 'cpu' && name !== 'stories260K' ? 8 : c.decode, c.prompt)
      rows.push(r)
      process.stdout.write(JSON.stringify({ kind: 'e2e', device: backend.name === 'webgpu' ? device : 'cpu', ...r, fractionOfCopyBandwidth: backend.name === 'webgpu' ? r.weightGBs / (bandwidth / 1e9) : undefined }) + '\n')
    }
  }
  process.stdout.write(`\nend to end (greedy; WebGPU on ${device}; device copy bandwidth ${f(bandwidth / 1e9)} GB/s, read+write)\n`)
  process.stdout.write('case                  backend   weights MB  prefill tok/s  decode tok/s  weights GB/s  of copy bw\n')
  for (const r of rows) {
    const frac = r.backend === 'webgpu' ? `${(100 * r.weightGBs / (bandwidth / 1e9)).toFixed(1)}%` : '-'
    process.stdout.write(`${r.case.padEnd(22)}${r.backend.padEnd(8)}${f(r.weightBytes / 1e6).padStart(11)}${f(r.prefillTokensPerSecond).padStart(15)}${f(r.decodeTokensPerSecond).padStart(14)}${f(r.weightGBs).padStart(14)}${frac.padStart(12)}\n`)
  }
}
ops.ctx.device.destroy()
