// The kernel sources: the tiny preprocessor, every kernel variant the backend can build
// compiles without errors or warnings, and the browser bundle's shader list names every
// file in shaders/ (Node reads the folder; browsers only get what is imported).
import { readdirSync, readFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { requestContext } from '../src/webgpu/context.ts'
import type { GpuContext } from '../src/webgpu/context.ts'
import { preprocess } from '../src/webgpu/preprocess.ts'

process.env.VK_ICD_FILENAMES ??= '/usr/lib/chromium/vk_swiftshader_icd.json'

describe('preprocess', () => {
  const files: Record<string, string> = {
    'a.wgsl': 'const N = {{N}}u;\n#if FAST\nfast\n#else\nslow\n#endif\n#if !FAST\nnot fast\n#endif\n#include "b_{{KIND}}.wgsl"',
    'b_x.wgsl': '#if FAST\nb fast {{N}}\n#endif'
  }
  const load = (f: string): string => files[f]

  it('substitutes, selects branches and includes', () => {
    expect(preprocess('a.wgsl', { N: 4, FAST: true, KIND: 'x' }, load)).toBe('const N = 4u;\nfast\nb fast 4')
    expect(preprocess('a.wgsl', { N: 2, FAST: false, KIND: 'x' }, load)).toBe('const N = 2u;\nslow\nnot fast\n')
  })

  it('refuses unknown defines and unbalanced directives', () => {
    expect(() => preprocess('a.wgsl', { FAST: true, KIND: 'x' }, load)).toThrow(/needs define N/)
    expect(() => preprocess('c.wgsl', {}, () => '#if X\n')).toThrow(/needs define X/)
    expect(() => preprocess('c.wgsl', { X: 1 }, () => '#if X\n')).toThrow(/without #endif/)
    expect(() => preprocess('c.wgsl', {}, () => '#endif')).toThrow(/unexpected #endif/)
    expect(() => preprocess('c.wgsl', {}, () => '#define X')).toThrow(/unknown directive/)
  })
})

describe('shaders/', () => {
  const dir = new URL('../../../shaders/', import.meta.url)

  it('the browser bundle carries every kernel file', () => {
    // read as text: the module imports .wgsl files, which only a bundler's text loader takes
    const browser = readFileSync(new URL('../src/webgpu/shaders.browser.ts', import.meta.url), 'utf8')
    const imported = [...browser.matchAll(/^import \w+ from '\.\.\/\.\.\/\.\.\/\.\.\/shaders\/([\w.]+)'$/gm)].map(m => m[1])
    const keyed = [...browser.matchAll(/^ {2}'([\w.]+)': \w+,?$/gm)].map(m => m[1])
    const files = readdirSync(dir).filter(f => f.endsWith('.wgsl')).sort()
    expect(imported.sort()).toEqual(files)
    expect(keyed.sort()).toEqual(files)
  })

  let ctx: GpuContext
  beforeAll(async () => { ctx = await requestContext() })
  afterAll(() => { ctx?.device.destroy() })

  const variants: Array<[string, Record<string, number | boolean | string>]> = []
  for (const WDTYPE of ['f32', 'f16', 'bf16', 'q8_0', 'q4_0']) {
    for (const X_VEC4 of [true, false]) {
      for (const SUBGROUPS of [true, false]) variants.push(['matmul.wgsl', { WDTYPE, ROWS: 4, TILE_N: 8, X_VEC4, SUBGROUPS }])
    }
    variants.push(['embedding.wgsl', { WDTYPE }])
  }
  for (const f of ['rmsnorm.wgsl', 'rope.wgsl', 'swiglu.wgsl', 'add.wgsl', 'mean.wgsl', 'softmax.wgsl', 'topk.wgsl']) variants.push([f, {}])
  variants.push(['attention.wgsl', { HEAD_DIM: 128, DPT: 2 }])

  it('every kernel variant compiles without errors or warnings', async () => {
    for (const [file, defines] of variants) {
      if (defines.SUBGROUPS === true && !ctx.info.subgroups) continue // needs the adapter feature
      const module = ctx.device.createShaderModule({ code: ctx.source(file, defines) })
      const messages = (await module.getCompilationInfo()).messages.map(m => `${m.type} ${m.lineNum}:${m.linePos} ${m.message}`)
      expect(messages, `${file} ${JSON.stringify(defines)}`).toEqual([])
    }
  })
})
