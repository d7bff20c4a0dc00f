/**
 * Model-package benchmark (the timings the unit tests used to assert): encoding a ~22k
 * character text with the stories260K tokenizer (tok512, the text the tokenizer test checks
 * token for token against run.c), and building the synthetic-100m checkpoint in memory.
 * Each is run once to warm up, then `--reps` times; prints the median (min–max) and one JSON
 * line.
 *
 *   pnpm bench:model
 *   pnpm bench:model -- --reps 9
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { SYNTHETIC_PRESETS, createTokenizer, readLlama2cTokenizer, syntheticModel } from '@shardmesh/model'
import { storiesDir } from '../fixtures.ts'

const { values } = parseArgs({ options: { reps: { type: 'string', default: '5' } } })
const reps = Number(values.reps)
if (!Number.isInteger(reps) || reps < 1) throw new Error(`--reps must be a positive integer, got ${values.reps}`)

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] }

/** Times `fn` once to warm up, then `reps` times; ms of each timed run. */
function time (fn: () => unknown): number[] {
  fn()
  const out: number[] = []
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now()
    fn()
    out.push(performance.now() - t0)
  }
  return out
}

/** Deterministic text of at least `minLength` characters made of `parts` (mulberry32, as in tokenizer.test.ts). */
function randomText (parts: string[], minLength: number, seed: number): string {
  let a = seed >>> 0
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32
  }
  let out = ''
  while (out.length < minLength) out += parts[Math.floor(next() * parts.length)]
  return out
}

const dir = storiesDir()
const golden = JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf8')) as { encode_cases: Array<{ text: string }>, cases: Array<{ text: string }> }
const tok = createTokenizer(readLlama2cTokenizer(new Uint8Array(readFileSync(join(dir, 'tok512.bin'))), 512, 'tok512.bin'))
const words = [...golden.encode_cases.map(c => c.text), ...golden.cases.map(c => c.text.slice(0, 300)),
  ' ', '  ', '\n', '\t', 'é', '日本', '🙂', 'the', ' the', 'aaaa', '!!']
const text = randomText(words, 22_000, 42)
const tokens = tok.encode(text).length
const encodeMs = time(() => tok.encode(text))

const preset = SYNTHETIC_PRESETS['synthetic-100m']
let bytes = 0
const buildMs = time(() => {
  const ckpt = syntheticModel(preset)
  bytes = [...ckpt.tensors.values()].reduce((n, t) => n + t.data.byteLength, 0)
})

const range = (xs: number[]): string => `${median(xs).toFixed(1)} ms (${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)})`
console.log(`tokenizer (tok512): ${text.length} characters → ${tokens} tokens in ${range(encodeMs)}, median of ${reps}`)
console.log(`syntheticModel(synthetic-100m): ${(bytes / 1e6).toFixed(0)} MB of F32 in ${range(buildMs)}, median of ${reps}`)
console.log(JSON.stringify({
  reps,
  tokenizer: { characters: text.length, tokens, medianMs: median(encodeMs), minMs: Math.min(...encodeMs), maxMs: Math.max(...encodeMs) },
  synthetic100m: { bytes, medianMs: median(buildMs), minMs: Math.min(...buildMs), maxMs: Math.max(...buildMs) }
}))
