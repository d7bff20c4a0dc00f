/**
 * Where does a Helia fetch into a tab spend its time (issue 11: ~0.09× HTTP)? A provider
 * process imports synthetic-100m (Q8_0) and serves it over TCP, WebSockets and HTTP. Then:
 *   - a Node peer fetches every part through Helia over TCP and over WebSockets (is the
 *     provider's WebSocket side the limit?);
 *   - a headless Chromium tab fetches them over HTTP and through Helia (WebSockets), the
 *     Helia fetch once under the Chrome DevTools Protocol sampling profiler; the profile's
 *     self time is summed per npm package (the bundle's `// node_modules/…` module markers
 *     map lines to packages) and per function;
 *   - the CPU seconds the provider process used during the tab's fetch (/proc).
 * Prints MB/s per run, medians, and the profile summary (a figure, not a test).
 *
 *   node test/bench/weights-tab-profile.ts [--reps 3] [--parts 4] [--blocks 8] [--top 25]
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { build } from 'esbuild'
import { repoRoot } from '../fixtures.ts'
import { launchChromium } from '../browser/chromium.ts'
import { serveRoutes } from '../browser/server.ts'
import { startPeer } from '../weights/peers.ts'
import { startProvider } from '../weights/provider.ts'
import type { PageRun } from './weights-page.ts'

const { values } = parseArgs({
  options: {
    reps: { type: 'string', default: '3' },
    parts: { type: 'string' },
    blocks: { type: 'string' },
    top: { type: 'string', default: '25' },
    'no-node': { type: 'boolean' }
  }
})
const reps = Number(values.reps)
const tuning = { partConcurrency: values.parts !== undefined ? Number(values.parts) : undefined, blockConcurrency: values.blocks !== undefined ? Number(values.blocks) : undefined }
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const mbps = (r: PageRun): number => Math.round(r.bytes / 1e6 / (r.ms / 1000) * 10) / 10
const runs: Record<string, number[]> = {}
/** Fetches that failed (stalled, or the provider's connection dropped), by figure. */
const failures: Record<string, string[]> = {}
function record (what: string, r: PageRun): void {
  (runs[what] ??= []).push(mbps(r))
  if (r.closeMs !== undefined) (runs[`${what} close ms`] ??= []).push(Math.round(r.closeMs))
  process.stderr.write(`  ${what}: ${(r.bytes / 1e6).toFixed(1)} MB in ${r.ms.toFixed(0)} ms = ${mbps(r)} MB/s${r.closeMs !== undefined ? ` (then ${r.closeMs.toFixed(0)} ms to stop: cache writes)` : ''}\n`)
}
/** utime + stime of a process, in seconds (Linux /proc; 100 ticks/s). */
function cpuSeconds (pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return (Number(f[11]) + Number(f[12])) / 100
}

process.stderr.write('provider: importing synthetic-100m Q8_0…\n')
const provider = await startProvider({ model: { kind: 'synthetic', preset: 'synthetic-100m', quant: 'Q8_0' }, ws: true, http: true }, 600_000)
const tcp = provider.addrs.find(a => a.includes('/tcp/') && !a.includes('/ws'))!
const ws = provider.addrs.find(a => a.includes('/ws'))!

async function nodeHelia (addr: string): Promise<PageRun> {
  const peer = await startPeer({ bootstrap: [addr], ...tuning })
  try {
    const manifest = await peer.weights.openManifest(provider.cid, { providers: [addr], useMesh: false })
    const start = performance.now()
    const r = await peer.weights.fetchParts(manifest, manifest.parts.map(p => p.id), { providers: [addr], useMesh: false })
    return { bytes: r.bytes, ms: performance.now() - start }
  } finally { await peer.stop() }
}

interface ProfileNode { id: number, callFrame: { functionName: string, url: string, lineNumber: number }, hitCount?: number }
interface Profile { nodes: ProfileNode[], samples: number[], timeDeltas: number[], startTime: number, endTime: number }

/** Bundle line → npm package (or `shardmesh`/`test`), from esbuild's `// path` markers before each module. */
function packageOfLine (js: string): (line: number) => string {
  const starts: Array<[number, string]> = []
  js.split('\n').forEach((l, i) => {
    const m = l.match(/^\/\/ (\S+\.(?:js|ts|mjs|cjs))$/)
    if (m === null) return
    const nm = m[1].match(/node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)/)
    starts.push([i, nm !== null ? nm[1] : m[1].startsWith('packages/') ? `shardmesh/${m[1].split('/')[1]}` : m[1]])
  })
  return line => {
    let lo = 0; let hi = starts.length - 1; let best = '(bundle prelude)'
    while (lo <= hi) { const mid = (lo + hi) >> 1; if (starts[mid][0] <= line) { best = starts[mid][1]; lo = mid + 1 } else hi = mid - 1 }
    return best
  }
}

/** Self time (ms) per package and per function; `(idle)`, `(program)`, `(garbage collector)` kept as they are. */
function summarize (profile: Profile, pkgOf: (line: number) => string, bundleUrl: string): { total: number, byPackage: Array<[string, number]>, byFunction: Array<[string, number]> } {
  const byId = new Map(profile.nodes.map(n => [n.id, n]))
  const pkg = new Map<string, number>()
  const fn = new Map<string, number>()
  let total = 0
  profile.samples.forEach((id, i) => {
    const dt = (profile.timeDeltas[i] ?? 0) / 1000
    total += dt
    const f = byId.get(id)!.callFrame
    const where = f.url === bundleUrl ? pkgOf(f.lineNumber) : f.url === '' ? f.functionName : f.url.replace(/^.*\//, '')
    pkg.set(where, (pkg.get(where) ?? 0) + dt)
    const name = `${f.functionName === '' ? '(anonymous)' : f.functionName} [${where}:${f.lineNumber + 1}]`
    fn.set(name, (fn.get(name) ?? 0) + dt)
  })
  const sorted = (m: Map<string, number>): Array<[string, number]> => [...m].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, Math.round(v)])
  return { total: Math.round(total), byPackage: sorted(pkg), byFunction: sorted(fn) }
}

try {
  const ids = await (async () => {
    const peer = await startPeer({ bootstrap: [tcp] })
    try { return (await peer.weights.openManifest(provider.cid, { providers: [tcp], useMesh: false })).parts.map(p => p.id) } finally { await peer.stop() }
  })()
  if (values['no-node'] !== true) {
    process.stderr.write(`Node peer, ${reps} repetitions:\n`)
    const node = async (what: string, addr: string): Promise<void> => {
      try {
        record(what, await nodeHelia(addr))
      } catch (err) {
        const message = (err as Error).message.split('\n')[0]
        ;(failures[what] ??= []).push(message)
        process.stderr.write(`  ${what}: FAILED ${message}\n`)
      }
    }
    for (let i = 0; i < reps; i++) {
      await node('node helia tcp', tcp)
      await node('node helia ws', ws)
    }
  }

  const js = (await build({ entryPoints: [join(repoRoot, 'test/bench/weights-page.ts')], bundle: true, format: 'esm', platform: 'browser', target: 'es2022', loader: { '.wgsl': 'text' }, write: false, logLevel: 'silent' })).outputFiles[0].text
  const server = await serveRoutes({
    '/': { type: 'text/html', body: '<!doctype html><meta charset="utf-8"><title>weights profile</title><script type="module" src="/weights.js"></script>' },
    '/weights.js': { type: 'text/javascript', body: js }
  })
  const chromium = await launchChromium()
  try {
    const page = await chromium.browser.newPage()
    page.setDefaultTimeout(600_000)
    await page.goto(server.url + '/')
    await page.waitForFunction('globalThis.bench !== undefined')
    const run = async (fn: string, ...args: unknown[]): Promise<PageRun> => await page.evaluate(async (f, a) => await ((globalThis as unknown as { bench: Record<string, (...x: unknown[]) => Promise<PageRun>> }).bench[f](...a)), fn, args) as PageRun
    process.stderr.write(`browser tab, ${reps} repetitions:\n`)
    const helia = async (cache: string | undefined): Promise<PageRun | undefined> => {
      const what = `tab helia ws ${cache === undefined ? 'memory' : 'idb'}`
      const cpu0 = cpuSeconds(provider.child.pid!)
      try {
        const r = await run('helia', ws, provider.cid, cache, tuning)
        record(what, r)
        process.stderr.write(`    provider CPU during it: ${((cpuSeconds(provider.child.pid!) - cpu0) / (r.ms / 1000) * 100).toFixed(0)} % of one core\n`)
        return r
      } catch (err) {
        const message = (err as Error).message.split('\n')[0]
        ;(failures[what] ??= []).push(message)
        process.stderr.write(`  ${what}: FAILED ${message}\n`)
      }
    }
    for (let i = 0; i < reps; i++) {
      record('tab http', await run('http', provider.http!, ids, 4))
      await helia(undefined)
      await helia(`profile-${i}`)
    }

    const cdp = await page.createCDPSession()
    await cdp.send('Profiler.enable')
    await cdp.send('Profiler.setSamplingInterval', { interval: 200 })
    for (const cache of [undefined, 'profiled']) {
      await cdp.send('Profiler.start')
      const r = await helia(cache)
      const { profile } = await cdp.send('Profiler.stop') as unknown as { profile: Profile }
      const s = summarize(profile, packageOfLine(js), server.url + '/weights.js')
      const top = Number(values.top)
      const pct = (ms: number): string => `${(ms / s.total * 100).toFixed(1)} %`
      process.stdout.write(`\nprofiled Helia fetch into ${cache === undefined ? 'memory' : 'IndexedDB'}: ${r === undefined ? 'failed' : `${mbps(r)} MB/s`} (the profiler slows it); main-thread self time (${s.total} ms), by package:\n`)
      for (const [k, v] of s.byPackage.slice(0, top)) process.stdout.write(`  ${String(v).padStart(7)} ms ${pct(v).padStart(7)}  ${k}\n`)
      process.stdout.write('by function:\n')
      for (const [k, v] of s.byFunction.slice(0, top)) process.stdout.write(`  ${String(v).padStart(7)} ms ${pct(v).padStart(7)}  ${k}\n`)
    }
  } finally {
    await chromium.close()
    await server.close()
  }
} finally {
  await provider.kill()
}

const medians = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, { median: median(v), runs: v }]))
process.stdout.write('\n' + JSON.stringify({ tuning, medians, failures, tabHeliaOverHttp: Object.fromEntries(['memory', 'idb'].map(c => [c, runs[`tab helia ws ${c}`] === undefined ? null : Math.round(median(runs[`tab helia ws ${c}`]) / median(runs['tab http']) * 1000) / 1000])) }) + '\n')
