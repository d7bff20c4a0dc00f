// `shardmesh start --open-peers N`: N headless Chromium tabs open the peer page and join the
// mesh as browser peers (demos and tests). One Chromium process, a fresh profile, WebGPU
// enabled (SwiftShader where there is no GPU), background throttling off so tabs that are not
// in front keep their heartbeats.
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CliError } from './errors.ts'

/** Debian's chromium; override with CHROMIUM_PATH. */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const STOP_GRACE_MS = 3000

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

/** Open `url` in `count` tabs of one headless Chromium; it is killed on `stop()` and when this process exits. */
export async function openPeers (url: string, count: number): Promise<OpenPeers> {
  if (!existsSync(CHROMIUM)) throw new CliError(`--open-peers needs Chromium at ${CHROMIUM}: install Debian's chromium (bash scripts/install-system.sh) or set CHROMIUM_PATH`)
  const profile = await mkdtemp(join(tmpdir(), 'shardmesh-open-peers-'))
  const urls = Array.from({ length: count }, () => url)
  const chromium = spawn(CHROMIUM, [...OPEN_PEER_FLAGS, `--user-data-dir=${profile}`, ...urls], { stdio: 'ignore' })
  const kill = (): void => { chromium.kill('SIGKILL') }
  process.once('exit', kill)
  await new Promise<void>((resolve, reject) => {
    chromium.once('spawn', () => { resolve() })
    chromium.once('error', err => { reject(new CliError(`cannot start Chromium for --open-peers: ${err.message}`)) })
  })
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
