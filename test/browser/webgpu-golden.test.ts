// The stories260K golden cases (both formats) on the webgpu backend in headless Chromium:
// esbuild bundles the engine for browsers (the .wgsl kernels as text), a Node http server on
// 127.0.0.1 serves the page, the bundle and the model files, and puppeteer-core drives
// Debian's chromium, whose WebGPU runs on SwiftShader without a GPU. Tokens and text must
// equal run.c's; logits within 1e-4 of the float64 reference, as in Node.
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { build } from 'esbuild'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { repoRoot, storiesDir } from '../fixtures.ts'
import { launchChromium } from './chromium.ts'
import type { Chromium } from './chromium.ts'
import type { PageCase, PageResult } from './engine-page.ts'
import { serveRoutes } from './server.ts'
import type { StaticServer } from './server.ts'

interface GoldenCase extends Omit<PageCase, 'logitPositions'> {
  prompt_tokens: number[]
  generated_tokens: number[]
  text: string
  logits?: Record<string, { python_float64: number[] }>
}

const dir = storiesDir()
const golden = JSON.parse(await readFile(join(dir, 'golden.json'), 'utf8')) as { cases: GoldenCase[] }

/** The engine page's bundle, built the way a browser app would build it. */
async function bundle (): Promise<string> {
  const out = await build({
    entryPoints: [join(repoRoot, 'test/browser/engine-page.ts')],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    loader: { '.wgsl': 'text' },
    write: false,
    logLevel: 'silent'
  })
  return out.outputFiles[0].text
}

let chromium: Chromium
let server: StaticServer
let run: { info: { runtime: string, fallback: boolean, architecture: string }, results: PageResult[] }

beforeAll(async () => {
  const js = await bundle()
  const file = (name: string) => async () => ({ type: 'application/octet-stream', body: new Uint8Array(await readFile(join(dir, name))) })
  server = await serveRoutes({
    '/': { type: 'text/html', body: '<!doctype html><meta charset="utf-8"><title>shardmesh engine</title><script type="module" src="/engine.js"></script>' },
    '/engine.js': { type: 'text/javascript', body: js },
    '/models/stories260K.bin': file('stories260K.bin'),
    '/models/stories260K.gguf': file('stories260K.gguf'),
    '/models/tok512.bin': file('tok512.bin')
  })
  chromium = await launchChromium({ webgpu: true })
  const page = await chromium.browser.newPage()
  const errors: string[] = []
  page.on('pageerror', err => errors.push(String(err)))
  await page.goto(server.url + '/')
  await page.waitForFunction('globalThis.shardmesh !== undefined', { timeout: 30_000 }).catch(() => {
    throw new Error(`the engine bundle did not load: ${errors.join('; ') || 'no page error'}`)
  })
  const cases: PageCase[] = golden.cases.map(c => ({
    tag: c.tag, prompt: c.prompt, steps: c.steps, num_prompt_tokens: c.num_prompt_tokens, full_sequence: c.full_sequence,
    logitPositions: Object.keys(c.logits ?? {}).map(Number)
  }))
  run = await page.evaluate(async (cs: PageCase[]) => {
    return await (globalThis as unknown as { shardmesh: { runGolden: (f: string[], c: PageCase[]) => Promise<typeof run> } }).shardmesh.runGolden(['llama2c', 'gguf'], cs)
  }, cases)
}, 600_000)

afterAll(async () => {
  await chromium?.close()
  await server?.close()
})

describe('stories260K golden in headless Chromium (webgpu backend, engine bundle)', () => {
  it('ran on the browser\'s WebGPU', () => {
    expect(run.info.runtime).toBe('browser')
    expect(run.results.length).toBe(2 * golden.cases.length)
  })

  it.each(['llama2c', 'gguf'])('%s: every case reproduces run.c\'s tokens and text', format => {
    for (const c of golden.cases) {
      const r = run.results.find(x => x.format === format && x.tag === c.tag && x.prompt === c.prompt)!
      expect(r.promptTokens, `${c.tag} ${JSON.stringify(c.prompt)}`).toEqual(c.prompt_tokens)
      expect(r.tokens, `${c.tag} ${JSON.stringify(c.prompt)}`).toEqual(c.generated_tokens)
      expect(r.text).toBe(c.text)
    }
  })

  it.each(['llama2c', 'gguf'])('%s: logits within 1e-4 of the float64 reference', format => {
    const c = golden.cases.find(x => x.logits !== undefined)!
    const r = run.results.find(x => x.format === format && x.tag === c.tag && x.prompt === c.prompt)!
    const positions = Object.keys(c.logits!).map(Number)
    expect(r.logits!.length).toBe(positions.length)
    positions.forEach((p, i) => {
      const ref = c.logits![String(p)].python_float64
      const worst = Math.max(...ref.map((v, j) => Math.abs(r.logits![i][j] - v)))
      expect(worst, `position ${p}`).toBeLessThan(1e-4)
    })
  })
})
