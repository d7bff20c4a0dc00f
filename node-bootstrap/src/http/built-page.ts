// What the peer page (browser-peer/) and the dashboard (dashboard/) share: each is a Vite app
// built into a `dist/` folder on demand and served from it — index.html and hashed assets/.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { extname, join, normalize, sep } from 'node:path'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { CliError } from '../errors.ts'

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.svg': 'image/svg+xml'
}

/**
 * Build the Vite app in `appDir` into `outDir` when it has no index.html, or always with
 * `rebuild`. Vite is a devDependency of the app; the build runs in a child process on this Node.
 */
export async function buildPage (appDir: string, outDir: string, what: string, options: { rebuild?: boolean, signal?: AbortSignal } = {}): Promise<string> {
  if (options.rebuild !== true && existsSync(join(outDir, 'index.html'))) return outDir
  const vite = join(appDir, 'node_modules/vite/bin/vite.js')
  if (!existsSync(vite)) throw new CliError(`vite is not installed in ${appDir} (run pnpm install)`)
  const child = spawn(process.execPath, [vite, 'build', '--logLevel', 'warn', '--outDir', outDir, '--emptyOutDir'], { cwd: appDir, stdio: ['ignore', 'pipe', 'pipe'], signal: options.signal })
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr.on('data', (d: Buffer) => { out += d.toString() })
  const [code] = await once(child, 'exit') as [number | null]
  if (code !== 0 || !existsSync(join(outDir, 'index.html'))) throw new CliError(`vite build of ${what} failed (exit ${String(code)}): ${out.slice(-2000)}`)
  return outDir
}

/**
 * Answer `req` with `file` (index.html or a file under assets/) of the build in `dist`; false
 * when it is neither or not there. index.html is revalidated, the hashed assets cached for good.
 */
export async function serveBuilt (req: IncomingMessage, res: ServerResponse, dist: string, file: string): Promise<boolean> {
  if (file !== 'index.html' && !file.startsWith('assets/')) return false
  const full = normalize(join(dist, file))
  if (!full.startsWith(dist + sep)) return false
  let body: Buffer
  try {
    body = await readFile(full)
  } catch {
    return false
  }
  res.writeHead(200, { 'content-type': TYPES[extname(full)] ?? 'application/octet-stream', 'content-length': body.length, 'cache-control': file === 'index.html' ? 'no-cache' : 'max-age=31536000, immutable' })
  res.end(req.method === 'HEAD' ? undefined : body)
  return true
}
