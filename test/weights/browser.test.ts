// The browser build of @shardmesh/weights: the package.json `browser` map swaps the
// blockstore-fs cache for IndexedDB and nothing Node-only is bundled; in headless Chromium a
// browser mesh peer fetches a model's parts from a Node provider over WebSockets + bitswap,
// and a node without network reads them back from IndexedDB.
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { build } from 'esbuild'
import { afterEach, describe, expect, it } from 'vitest'
import { layerManifest, partBytes } from '@shardmesh/model'
import { repoRoot } from '../fixtures.ts'
import { launchChromium } from '../browser/chromium.ts'
import type { Chromium } from '../browser/chromium.ts'
import { serveRoutes } from '../browser/server.ts'
import type { StaticServer } from '../browser/server.ts'
import type { PageFetch } from './browser-page.ts'
import { loadSpec } from './peers.ts'
import { startProvider } from './provider.ts'
import type { ProviderHandle } from './provider.ts'

let provider: ProviderHandle | undefined
let chromium: Chromium | undefined
let server: StaticServer | undefined
afterEach(async () => {
  await chromium?.close()
  await server?.close()
  await provider?.kill()
  chromium = server = provider = undefined
})

async function bundle (entry: string): Promise<{ js: string, inputs: string[] }> {
  const out = await build({ absWorkingDir: repoRoot, entryPoints: [join(repoRoot, entry)], bundle: true, format: 'esm', platform: 'browser', target: 'es2022', loader: { '.wgsl': 'text' }, write: false, metafile: true, logLevel: 'silent' })
  return { js: out.outputFiles[0].text, inputs: Object.keys(out.metafile.inputs) }
}

describe('@shardmesh/weights in a browser', () => {
  it('bundles the IndexedDB cache and nothing Node-only', async () => {
    const { inputs } = await bundle('packages/weights/src/index.ts')
    expect(inputs).toContain('packages/weights/src/cache.browser.ts')
    expect(inputs).not.toContain('packages/weights/src/cache.ts')
    expect(inputs.filter(i => /blockstore-fs|^node:/.test(i))).toEqual([])
    expect(inputs.some(i => i.includes('blockstore-idb'))).toBe(true)
  })

  it('a tab fetches every part from a Node provider into IndexedDB and reads them back offline', async () => {
    const ckpt = await loadSpec({ kind: 'stories260K' })
    provider = await startProvider({ model: { kind: 'stories260K' }, ws: true })
    const ws = provider.addrs.find(a => a.includes('/ws/'))!
    const { js } = await bundle('test/weights/browser-page.ts')
    server = await serveRoutes({
      '/': { type: 'text/html', body: '<!doctype html><meta charset="utf-8"><title>shardmesh weights</title><script type="module" src="/page.js"></script>' },
      '/page.js': { type: 'text/javascript', body: js }
    })
    chromium = await launchChromium()
    const page = await chromium.browser.newPage()
    const errors: string[] = []
    page.on('pageerror', err => errors.push(String(err)))
    await page.goto(server.url + '/')
    await page.waitForFunction('globalThis.weightsPage !== undefined')
    const result = await page.evaluate(async (b, c) => await (globalThis as unknown as { weightsPage: { fetchModel: (b: string, c: string, n: string) => Promise<PageFetch> } }).weightsPage.fetchModel(b, c, 'weights-test'), ws, provider.cid)

    const expected = Object.fromEntries(layerManifest(ckpt).parts.map(p => [p.id, createHash('sha256').update(partBytes(ckpt, p)).digest('hex')]))
    expect(result.fetched).toEqual(expected)
    expect(result.cached).toEqual(expected)
    expect(result.held).toEqual(Object.keys(expected))
    expect(new Set(Object.values(result.sources))).toEqual(new Set([provider.peerId]))
    expect(errors).toEqual([])
  })
})
