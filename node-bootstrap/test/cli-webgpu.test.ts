// `shardmesh generate --backend webgpu`: the golden generation on WebGPU (Dawn in Node;
// SwiftShader from Debian's chromium without a GPU), the same tokens split into stages and
// when sampling as the cpu backend, and a clear error when no adapter exists.
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { storiesDir } from '../../test/fixtures.ts'
import { shardmesh } from './run-cli.ts'
import type { CliRun } from './run-cli.ts'

const icd = process.env.VK_ICD_FILENAMES ?? '/usr/lib/chromium/vk_swiftshader_icd.json'

const run = async (args: string[], env: Record<string, string> = { VK_ICD_FILENAMES: icd }): Promise<CliRun> => await shardmesh(args, env)

const dir = storiesDir()
const golden = JSON.parse(await readFile(join(dir, 'golden.json'), 'utf8')) as { cases: Array<{ prompt: string, steps: number, num_prompt_tokens: number, prompt_tokens: number[], generated_tokens: number[], text: string }> }
const onceUpon = golden.cases.find(c => c.prompt === 'Once upon a time')!

describe('shardmesh generate --backend webgpu', () => {
  it('prints the golden generation', async () => {
    const n = onceUpon.steps - onceUpon.num_prompt_tokens + 1
    const r = await run(['generate', '--local', '--backend', 'webgpu', '--model', join(dir, 'stories260K.bin'), '--tokenizer', join(dir, 'tok512.bin'), '--prompt', onceUpon.prompt, '--max-tokens', String(n), '--json'])
    expect(r.code, r.stderr).toBe(0)
    const out = JSON.parse(r.stdout)
    expect(out.backend).toBe('webgpu')
    expect(out.generated_tokens).toEqual(onceUpon.generated_tokens)
    expect(out.text).toBe(onceUpon.text)
    expect(out.timings.decode_tokens_per_second).toBeGreaterThan(0)
  })

  it('gives the cpu backend\'s tokens split into stages and when sampling', async () => {
    const args = ['generate', '--local', '--model', join(dir, 'stories260K.gguf'), '--prompt', 'The dog', '--max-tokens', '40', '--json']
    const split = JSON.parse((await run([...args, '--backend', 'webgpu', '--stages', '3'])).stdout)
    const cpu = JSON.parse((await run([...args, '--backend', 'cpu'])).stdout)
    expect(split.stages).toEqual([[0, 2], [2, 4], [4, 5]])
    expect(split.generated_tokens).toEqual(cpu.generated_tokens)
    const sampling = ['--temperature', '0.9', '--top-k', '20', '--top-p', '0.95', '--seed', '7']
    const gpuSampled = JSON.parse((await run([...args, '--backend', 'webgpu', ...sampling])).stdout)
    const cpuSampled = JSON.parse((await run([...args, '--backend', 'cpu', ...sampling])).stdout)
    expect(gpuSampled.generated_tokens).toEqual(cpuSampled.generated_tokens)
    expect(gpuSampled.generated_tokens).not.toEqual(cpu.generated_tokens)
  })

  it('without an adapter, fails with a WebGpuError naming VK_ICD_FILENAMES', async () => {
    const r = await run(['generate', '--local', '--backend', 'webgpu', '--model', join(dir, 'stories260K.gguf'), '--prompt', 'hi'], { VK_ICD_FILENAMES: '/nonexistent/icd.json' })
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/^shardmesh: WebGpuError: no WebGPU adapter .*VK_ICD_FILENAMES=\/usr\/lib\/chromium\/vk_swiftshader_icd\.json/m)
  })

  it('refuses an unknown backend', async () => {
    const r = await run(['generate', '--local', '--backend', 'cuda', '--model', join(dir, 'stories260K.gguf')])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/--backend must be cpu or webgpu, got "cuda"/)
  })
})
