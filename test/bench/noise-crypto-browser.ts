// Is noise's encryption the limit of Helia fetches into a tab (issue 11: ~16 MB/s, 0.1x HTTP)?
// ChaCha20-Poly1305 seal + open of 64 MiB in noise-sized messages (65519 bytes) in headless
// Chromium: @noble/ciphers, what @libp2p/noise uses in browsers, and the AssemblyScript/wasm
// @chainsafe/as-chacha20poly1305 it ships for Node. Prints JSON.
// Run: node test/bench/noise-crypto-browser.ts
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { createRequire } from 'node:module'
import { build } from 'esbuild'
import puppeteer from 'puppeteer-core'
import { repoRoot } from '../fixtures.ts'
import { CHROMIUM_FLAGS, CHROMIUM_PATH } from '../browser/chromium.ts'

const ENTRY = `
import { chacha20poly1305 } from '@noble/ciphers/chacha.js'
import { newInstance, ChaCha20Poly1305 } from '@chainsafe/as-chacha20poly1305'
const k = new Uint8Array(32).fill(7), nonce = new Uint8Array(12), ad = new Uint8Array(0)
const msg = new Uint8Array(65519).fill(3)
function run (name, enc, dec) {
  const n = Math.ceil(64 * 1048576 / msg.length)
  const t0 = performance.now()
  for (let i = 0; i < n; i++) dec(enc(msg))
  return { name, sealPlusOpenMBps: Math.round(n * msg.length / 1048576 / ((performance.now() - t0) / 1000) * 10) / 10 }
}
const as = new ChaCha20Poly1305(newInstance())
globalThis.result = [
  run('@noble/ciphers (noise in browsers)', m => chacha20poly1305(k, nonce, ad).encrypt(m), c => chacha20poly1305(k, nonce, ad).decrypt(c)),
  run('@chainsafe/as-chacha20poly1305 (wasm)', m => as.seal(k, nonce, m, ad), c => as.open(k, nonce, c, ad))
]`

// resolve both from @libp2p/noise, as the mesh's browser bundle does
const noiseDir = dirname(dirname(createRequire(join(repoRoot, 'packages/mesh/package.json')).resolve('@libp2p/noise')))
const out = await build({ stdin: { contents: ENTRY, resolveDir: noiseDir }, bundle: true, format: 'esm', platform: 'browser', write: false, nodePaths: [join(noiseDir, '../..')], logLevel: 'error' })
const profile = await mkdtemp(join(tmpdir(), 'shardmesh-crypto-'))
const browser = await puppeteer.launch({ executablePath: CHROMIUM_PATH, headless: true, pipe: true, args: [...CHROMIUM_FLAGS, `--user-data-dir=${profile}`] })
try {
  const page = await browser.newPage()
  await page.goto('data:text/html,<title>crypto</title>')
  await page.addScriptTag({ content: out.outputFiles[0].text, type: 'module' })
  await page.waitForFunction('globalThis.result !== undefined', { timeout: 120_000 })
  console.log(JSON.stringify({ chromium: await browser.version(), results: await page.evaluate('globalThis.result') }))
} finally {
  await browser.close()
  await rm(profile, { recursive: true, force: true })
}
