import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import puppeteer from 'puppeteer-core'
import type { Browser } from 'puppeteer-core'

/** Debian's chromium (scripts/install-system.sh); override with CHROMIUM_PATH. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

/** DESIGN §2: headless, no sandbox (containers), nothing that reaches the network. */
export const CHROMIUM_FLAGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync'
]

export interface LaunchOptions {
  /** Expose navigator.gpu (SwiftShader without a GPU); pages must be a secure context such as http://127.0.0.1. @default false */
  webgpu?: boolean
  /** More command-line flags. */
  args?: string[]
}

export interface Chromium {
  browser: Browser
  /** Close the browser and delete its fresh profile. */
  close: () => Promise<void>
}

/** Launch Debian's Chromium through puppeteer-core with a fresh --user-data-dir. */
export async function launchChromium (options: LaunchOptions = {}): Promise<Chromium> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`Chromium not found at ${CHROMIUM_PATH}: install Debian's chromium (bash scripts/install-system.sh, as root) or set CHROMIUM_PATH`)
  }
  const profile = await mkdtemp(join(tmpdir(), 'shardmesh-chromium-'))
  const args = [...CHROMIUM_FLAGS, `--user-data-dir=${profile}`, ...(options.webgpu === true ? ['--enable-unsafe-webgpu'] : []), ...(options.args ?? [])]
  let browser: Browser
  try {
    browser = await puppeteer.launch({ executablePath: CHROMIUM_PATH, headless: true, args })
  } catch (err) {
    await rm(profile, { recursive: true, force: true })
    throw err
  }
  return {
    browser,
    close: async () => {
      await browser.close().catch(() => {})
      await rm(profile, { recursive: true, force: true })
    }
  }
}
