// `shardmesh start --open-peers N`: N headless Chromium tabs open the peer page and join the
// mesh as browser peers (demos and tests). One Chromium process, a fresh profile, WebGPU
// enabled (SwiftShader where there is no GPU), background throttling off so tabs that are not
// in front keep their heartbeats.
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CliError } from './errors.ts'

/** Debian's chromium; override with CHROMIUM_PATH. */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const STOP_GRACE_MS = 3000
/** Longest wait for Chromium's DevTools endpoint. */
const DEVTOOLS_WAIT_MS = 20_000

/** Headless, no sandbox (containers), nothing that reaches the network by itself (DESIGN §2). */
export const OPEN_PEER_FLAGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--enable-unsafe-webgpu',
  '--disable-background-timer-throttling',
  '--disable-renderer-backgrounding',
  '--disable-backgrounding-occluded-windows'
]

/** `--open-peers N` (0 when absent). */
export function openPeersOf (values: Record<string, string | boolean | undefined>): number {
  if (values['open-peers'] === undefined) return 0
  const n = Number(values['open-peers'])
  if (!Number.isInteger(n) || n < 0 || n > 16) throw new CliError(`--open-peers must be a whole number 0–16, got "${String(values['open-peers'])}"`)
  return n
}

export interface OpenPeers {
  chromium: ChildProcess
  stop: () => Promise<void>
}

/** The DevTools port Chromium wrote into its profile (waits up to DEVTOOLS_WAIT_MS). */
async function devtoolsPort (profile: string, chromium: ChildProcess, stderr: () => string): Promise<number> {
  const deadline = Date.now() + DEVTOOLS_WAIT_MS
  for (;;) {
    const text = await readFile(join(profile, 'DevToolsActivePort'), 'utf8').catch(() => '')
    const port = Number(text.split('\n')[0])
    if (text.includes('\n') && Number.isInteger(port) && port > 0) return port
    if (chromium.exitCode !== null || chromium.signalCode !== null) throw new CliError(`Chromium exited (${String(chromium.exitCode ?? chromium.signalCode)}) before it opened the --open-peers tabs: ${stderr()}`)
    if (Date.now() > deadline) throw new CliError(`Chromium wrote no DevTools port within ${DEVTOOLS_WAIT_MS} ms: ${stderr()}`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

/** Open `url` in `count` tabs of one headless Chromium; it is killed on `stop()` and when this process exits. */
export async function openPeers (url: string, count: number): Promise<OpenPeers> {
  if (!existsSync(CHROMIUM)) throw new CliError(`--open-peers needs Chromium at ${CHROMIUM}: install Debian's chromium (bash scripts/install-system.sh) or set CHROMIUM_PATH`)
  const profile = await mkdtemp(join(tmpdir(), 'shardmesh-open-peers-'))
  // headless Chromium opens one URL from its command line ("multiple targets are not
  // supported"): the first tab comes from there, the others through its DevTools HTTP
  // endpoint on loopback (PUT /json/new?URL), whose port it writes to DevToolsActivePort
  const chromium = spawn(CHROMIUM, [...OPEN_PEER_FLAGS, '--remote-debugging-address=127.0.0.1', '--remote-debugging-port=0', `--user-data-dir=${profile}`, url], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  chromium.stderr!.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-2000) })
  const kill = (): void => { chromium.kill('SIGKILL') }
  process.once('exit', kill)
  try {
    await new Promise<void>((resolve, reject) => {
      chromium.once('spawn', () => { resolve() })
      chromium.once('error', err => { reject(new CliError(`cannot start Chromium for --open-peers: ${err.message}`)) })
    })
    if (count > 1) {
      const port = await devtoolsPort(profile, chromium, () => stderr)
      for (let i = 1; i < count; i++) {
        const res = await fetch(`http://127.0.0.1:${port}/json/new?${url}`, { method: 'PUT' })
        if (!res.ok) throw new CliError(`Chromium did not open tab ${i + 1} of --open-peers: HTTP ${res.status} ${await res.text()}`)
      }
    }
  } catch (err) {
    process.off('exit', kill)
    kill()
    await rm(profile, { recursive: true, force: true })
    throw err
  }
  return {
    chromium,
    stop: async () => {
      process.off('exit', kill)
      if (chromium.exitCode === null && chromium.signalCode === null) {
        const exited = new Promise(resolve => chromium.once('exit', resolve))
        chromium.kill('SIGTERM')
        const timer = setTimeout(kill, STOP_GRACE_MS)
        await exited
        clearTimeout(timer)
      }
      await rm(profile, { recursive: true, force: true })
    }
  }
}

/** `--min-peers N`: compute peers the coordinator waits for (up to 30 s) before its first plan; `fallback` when absent. */
export function minPeersOf (values: Record<string, string | boolean | undefined>, fallback: number): number {
  if (values['min-peers'] === undefined) return fallback
  const n = Number(values['min-peers'])
  if (!Number.isInteger(n) || n < 0 || n > 256) throw new CliError(`--min-peers must be a whole number 0–256, got "${String(values['min-peers'])}"`)
  return n
}
