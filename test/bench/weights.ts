/**
 * Weights over IPFS benchmark: a provider process (the bootstrap) imports a ~116 MB model
 * (synthetic-100m, Q8_0) into Helia and serves the same part bytes over plain HTTP; then
 * a second Node peer (this process) and a browser tab (headless Chromium, WebSocket to the
 * provider) each fetch every part through Helia/bitswap and download the same bytes over
 * HTTP, alternating, several repetitions. Prints a table and one JSON line per target with
 * median MB/s and the ratio Helia / HTTP. Times are the fetch of the parts (the manifest is
 * opened before the clock starts); the browser's Helia runs twice: caching into IndexedDB
 * (what a peer page does) and into memory (transfer alone).
 *
 *   pnpm bench:weights                          # Node peer and browser tab, 3 repetitions
 *   pnpm bench:weights -- --reps 5 --no-browser
 *   pnpm bench:weights -- --model stories260K   # a quick run on the small model
 */
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { build } from 'esbuild'
import { repoRoot } from '../fixtures.ts'
import { launchChromium } from '../browser/chromium.ts'
import { serveRoutes } from '../browser/server.ts'
import { startPeer } from '../weights/peers.ts'
import type { ModelSpec } from '../weights/peers.ts'
import { startProvider } from '../weights/provider.ts'
import type { PageRun } from './weights-page.ts'

const { values } = parseArgs({
  options: {
    reps: { type: 'string', default: '3' },
    'no-browser': { type: 'boolean' },
    model: { type: 'string', default: 'synthetic-100m-q8_0' },
    /** Helia's parts and blocks in flight (defaults: the package's, 4 and 8). */
    parts: { type: 'string' },
    blocks: { type: 'string' }
  }
})
const tuning = { partConcurrency: values.parts !== undefined ? Number(values.parts) : undefined, blockConcurrency: values.blocks !== undefined ? Number(values.blocks) : undefined }
const reps = Number(values.reps)
const models: Record<string, ModelSpec> = {
  'synthetic-100m-q8_0': { kind: 'synthetic', preset: 'synthetic-100m', quant: 'Q8_0' },
  stories260K: { kind: 'stories260K' }
}
const spec = models[values.model]
if (spec === undefined) throw new Error(`--model must be one of ${Object.keys(models).join(', ')}`)
const CONCURRENCY = 4 // parts at a time, for both Helia (its default) and HTTP

interface Row { target: string, method: string, mbPerSecond: number[], bytes: number }
const rows: Row[] = []
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const mbps = (r: PageRun): number => r.bytes / 1e6 / (r.ms / 1000)
function record (target: string, method: string, r: PageRun): void {
  const same = rows.find(x => x.target === 'node' && x.method === 'helia')?.bytes
  if (same !== undefined && r.bytes !== same) throw new Error(`${target} ${method} got ${r.bytes} bytes, the Node Helia fetch ${same}: not the same bytes`)
  let row = rows.find(x => x.target === target && x.method === method)
  if (row === undefined) rows.push(row = { target, method, mbPerSecond: [], bytes: r.bytes })
  row.mbPerSecond.push(mbps(r))
  process.stderr.write(`  ${target} ${method}: ${(r.bytes / 1e6).toFixed(1)} MB in ${r.ms.toFixed(0)} ms = ${mbps(r).toFixed(1)} MB/s\n`)
}

process.stderr.write(`provider: importing ${values.model}…\n`)
const provider = await startProvider({ model: spec, ws: true, http: true }, 600_000)
const tcp = provider.addrs.find(a => a.includes('/tcp/') && !a.includes('/ws'))!
const ws = provider.addrs.find(a => a.includes('/ws'))!
process.stderr.write(`provider ${provider.peerId}: ${provider.cid} (import ${provider.importMs.toFixed(0)} ms), HTTP ${provider.http!}\n`)

async function nodeHelia (): Promise<PageRun> {
  const peer = await startPeer({ bootstrap: [tcp], ...tuning })
  try {
    const manifest = await peer.weights.openManifest(provider.cid, { providers: [tcp], useMesh: false })
    const start = performance.now()
    const r = await peer.weights.fetchParts(manifest, manifest.parts.map(p => p.id), { providers: [tcp], useMesh: false })
    return { bytes: r.bytes, ms: performance.now() - start }
  } finally { await peer.stop() }
}

async function nodeHttp (ids: string[]): Promise<PageRun> {
  const start = performance.now()
  let bytes = 0
  let next = 0
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < ids.length) {
      const res = await fetch(`${provider.http!}/parts/${encodeURIComponent(ids[next++])}`)
      if (!res.ok) throw new Error(`HTTP ${res.status} from the provider`)
      const n = (await res.arrayBuffer()).byteLength
      bytes += n
    }
  }))
  return { bytes, ms: performance.now() - start }
}

try {
  const ids = await (async () => {
    const peer = await startPeer({ bootstrap: [tcp] })
    try { return (await peer.weights.openManifest(provider.cid, { providers: [tcp], useMesh: false })).parts.map(p => p.id) } finally { await peer.stop() }
  })()
  process.stderr.write(`Node peer (this process), ${reps} repetitions:\n`)
  for (let i = 0; i < reps; i++) {
    if (i % 2 === 0) { record('node', 'helia', await nodeHelia()); record('node', 'http', await nodeHttp(ids)) } else { record('node', 'http', await nodeHttp(ids)); record('node', 'helia', await nodeHelia()) }
  }

  if (values['no-browser'] !== true) {
    const js = (await build({ entryPoints: [join(repoRoot, 'test/bench/weights-page.ts')], bundle: true, format: 'esm', platform: 'browser', target: 'es2022', loader: { '.wgsl': 'text' }, write: false, logLevel: 'silent' })).outputFiles[0].text
    const server = await serveRoutes({
      '/': { type: 'text/html', body: '<!doctype html><meta charset="utf-8"><title>shardmesh weights bench</title><script type="module" src="/weights.js"></script>' },
      '/weights.js': { type: 'text/javascript', body: js }
    })
    const chromium = await launchChromium()
    try {
      const page = await chromium.browser.newPage()
      page.setDefaultTimeout(600_000)
      const errors: string[] = []
      page.on('pageerror', err => errors.push(String(err)))
      await page.goto(server.url + '/')
      await page.waitForFunction('globalThis.bench !== undefined')
      const ua = await page.evaluate('navigator.userAgent') as string
      process.stderr.write(`browser tab (${ua.match(/Chrome\/[\d.]+/)?.[0] ?? ua}), ${reps} repetitions:\n`)
      const run = async (fn: string, ...args: unknown[]): Promise<PageRun> => await page.evaluate(async (f, a) => await ((globalThis as unknown as { bench: Record<string, (...x: unknown[]) => Promise<PageRun>> }).bench[f](...a)), fn, args) as PageRun
      for (let i = 0; i < reps; i++) {
        record('browser', 'helia+idb', await run('helia', ws, provider.cid, `bench-${i}`, tuning))
        record('browser', 'helia', await run('helia', ws, provider.cid, undefined, tuning))
        record('browser', 'http', await run('http', provider.http!, ids, CONCURRENCY))
      }
      if (errors.length > 0) process.stderr.write(`page errors: ${errors.join('; ')}\n`)
    } finally {
      await chromium.close()
      await server.close()
    }
  }
} finally {
  await provider.kill()
}

const json = rows.map(r => {
  const http = rows.find(x => x.target === r.target && x.method === 'http')
  return { target: r.target, method: r.method, model: values.model, bytes: r.bytes, reps: r.mbPerSecond.length, mbPerSecond: median(r.mbPerSecond), runs: r.mbPerSecond.map(x => Math.round(x * 10) / 10), ratioToHttp: http !== undefined ? median(r.mbPerSecond) / median(http.mbPerSecond) : null }
})
for (const j of json) process.stdout.write(JSON.stringify(j) + '\n')
process.stdout.write(`\ntarget   method      MB      median MB/s   runs MB/s              Helia/HTTP\n`)
for (const j of json) {
  process.stdout.write(`${j.target.padEnd(9)}${j.method.padEnd(12)}${(j.bytes / 1e6).toFixed(1).padStart(6)}${j.mbPerSecond.toFixed(1).padStart(14)}   ${j.runs.join(', ').padEnd(22)} ${j.method === 'http' ? '' : (j.ratioToHttp ?? 0).toFixed(3)}\n`)
}
