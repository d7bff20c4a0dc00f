// The WebGPU backend against the CPU backend on whole models (every stored dtype, GQA and
// MHA, tied and untied heads, widths that are not multiples of 4 or of the tiles), its
// sampling (the CPU sampler's token for the same logits), weights split past the storage
// binding limit, and its failures (device lost, no adapter) as WebGpuError.
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { quantizeCheckpoint, syntheticModel, SYNTHETIC_PRESETS } from '@shardmesh/model'
import type { Checkpoint } from '@shardmesh/model'
import { argmax, cpuBackend, generate, sample, webgpuBackend } from '../src/index.ts'
import type { Backend, SamplingParams } from '../src/index.ts'
import { requestContext } from '../src/webgpu/context.ts'

process.env.VK_ICD_FILENAMES ??= '/usr/lib/chromium/vk_swiftshader_icd.json'

let device: GPUDevice
beforeAll(async () => { device = (await requestContext()).device })
afterAll(() => { device?.destroy() })

const blocked = syntheticModel({ dim: 64, hiddenDim: 96, nLayers: 2, nHeads: 4, nKvHeads: 2, vocabSize: 416, ropeLayout: 'interleaved', name: 'blocked' })
const models: Array<[string, Checkpoint]> = [
  ['tiny-gqa2 F32', syntheticModel(SYNTHETIC_PRESETS['tiny-gqa2'])],
  ['tiny-gqa4-untied F16', quantizeCheckpoint(syntheticModel(SYNTHETIC_PRESETS['tiny-gqa4-untied']), 'F16')],
  ['tiny-mha-odd F32', syntheticModel(SYNTHETIC_PRESETS['tiny-mha-odd'])],
  ['blocked Q8_0', quantizeCheckpoint(blocked, 'Q8_0')],
  ['blocked Q4_0', quantizeCheckpoint(blocked, 'Q4_0')]
]
const prompt = [1, 80, 120, 7, 300, 42, 9]

async function logitsOf (backend: Backend, m: Checkpoint): Promise<Float32Array> {
  const stage = await backend.createStage({ config: m.config, layers: [0, m.config.nLayers], tensors: m.tensors })
  const out = await stage.createSession().forward({ position: 0, tokens: prompt }, { allLogits: true })
  await stage.close()
  return out.logits!
}

describe('webgpu backend vs cpu backend on whole models', () => {
  it.each(models)('%s: logits within 1e-4 of the largest and the same greedy tokens', async (_name, m) => {
    const gpu = await logitsOf(webgpuBackend({ device }), m)
    const cpu = await logitsOf(cpuBackend(), m)
    let worst = 0
    let scale = 0
    for (let i = 0; i < cpu.length; i++) { worst = Math.max(worst, Math.abs(gpu[i] - cpu[i])); scale = Math.max(scale, Math.abs(cpu[i])) }
    expect(worst / scale).toBeLessThan(1e-4)
    const tokens: number[][] = []
    for (const backend of [webgpuBackend({ device }), cpuBackend()]) {
      const stage = await backend.createStage({ config: m.config, layers: [0, m.config.nLayers], tensors: m.tensors })
      const r = await generate({ sessions: [stage.createSession()], promptTokens: prompt, maxTokens: 24, contextLength: m.config.contextLength })
      tokens.push(r.tokens)
      await stage.close()
    }
    expect(tokens[0]).toEqual(tokens[1])
  })
})

describe('webgpu sampling', () => {
  const m = syntheticModel(SYNTHETIC_PRESETS['tiny-gqa2'])
  const cases: Array<[string, SamplingParams]> = [
    ['greedy (GPU argmax)', { temperature: 0 }],
    ['temperature + top-k (GPU top-k, JS draw)', { temperature: 0.9, topK: 7, seed: 3 }],
    ['temperature + top-k + top-p', { temperature: 1.3, topK: 40, topP: 0.8, seed: 11 }],
    ['temperature, top-k off (JS over the read-back logits)', { temperature: 0.7, seed: 5 }],
    ['temperature, top-k above the GPU limit', { temperature: 1.1, topK: 300, seed: 9 }]
  ]
  it.each(cases)('%s draws what the CPU sampler draws from the same logits', async (_name, params) => {
    const stage = await webgpuBackend({ device }).createStage({ config: m.config, layers: [0, m.config.nLayers], tensors: m.tensors })
    const session = stage.createSession()
    let out = await session.forward({ position: 0, tokens: prompt }, { sample: params })
    const draws = new Set<number>()
    for (let p = prompt.length; p < prompt.length + 30; p++) {
      expect(out.token, `position ${p}`).toBe(sample(out.logits!, params, p))
      if ((params.temperature ?? 0) === 0) expect(out.token).toBe(argmax(out.logits!))
      draws.add(out.token!)
      out = await session.forward({ position: p, tokens: [out.token!] }, { sample: params })
    }
    expect(draws.size).toBeGreaterThan(1)
    await stage.close()
  })
})

describe('webgpu limits and failures', () => {
  it('splits weights past maxBindingBytes by rows and gives the same bits', async () => {
    const m = syntheticModel(SYNTHETIC_PRESETS['tiny-gqa2'])
    const whole = await logitsOf(webgpuBackend({ device }), m)
    // the 400 × 36 F32 embedding (57,600 bytes) and the 100 × 36 FFN matrices (14,400) split; activations fit
    const split = await logitsOf(webgpuBackend({ device, maxBindingBytes: 14_000 }), m)
    expect(Array.from(split)).toEqual(Array.from(whole))
  })

  it('reports a lost device as WebGpuError with the WEBGPU classification', async () => {
    const own = (await requestContext()).device
    const m = syntheticModel(SYNTHETIC_PRESETS['tiny-gqa2'])
    const stage = await webgpuBackend({ device: own }).createStage({ config: m.config, layers: [0, m.config.nLayers], tensors: m.tensors })
    const session = stage.createSession()
    await session.forward({ position: 0, tokens: [1, 2] })
    own.destroy()
    await own.lost
    await expect(session.forward({ position: 2, tokens: [3] })).rejects.toMatchObject({ name: 'WebGpuError', reason: 'device-lost', classification: 'WEBGPU' })
    expect(session.position).toBe(2)
    await expect(webgpuBackend({ device: own }).createStage({ config: m.config, layers: [0, 1], tensors: m.tensors })).rejects.toMatchObject({ name: 'WebGpuError', reason: 'device-lost' })
  })

  it('without an adapter, fails with WebGpuError naming VK_ICD_FILENAMES', async () => {
    const index = fileURLToPath(new URL('../src/index.ts', import.meta.url))
    const script = `import(${JSON.stringify(index)}).then(e => e.webgpuBackend().info()).then(() => console.log('adapter found'), err => console.log(err.name, err.reason, err.message))`
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, VK_ICD_FILENAMES: '/nonexistent/icd.json' } }, (err, out) => err === null ? resolve(out) : reject(err))
    })
    expect(stdout).toMatch(/^WebGpuError no-adapter .*VK_ICD_FILENAMES=\/usr\/lib\/chromium\/vk_swiftshader_icd\.json/m)
    expect(stdout).toContain('"/nonexistent/icd.json"')
  })
})
