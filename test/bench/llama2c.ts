/**
 * llama2.c's `run.c` as a reference point for the CPU benchmark: built from source with the
 * system C compiler and run on stories260K in the same benchmark run. The source is not part
 * of this repository and this machine cannot download it: put llama2.c's `run.c` at
 * `.cache/llama2c/run.c` (ignored by git) or point LLAMA2C_RUN_C at it. Without it, or
 * without a C compiler, the comparison is reported as not run, with the reason.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { repoRoot } from '../fixtures.ts'

/** Builds compared: llama2.c's Makefile `run` (-O3) and the fastest single-thread flags it suggests. */
export const RUNC_BUILDS: Record<string, string[]> = {
  'gcc -O3': ['-O3'],
  'gcc -Ofast -march=native': ['-Ofast', '-march=native']
}

export interface RunCResult {
  build: string
  /** run.c's own "achieved tok/s" (positions 1..steps-1, timer started after position 0): median of `runs`. */
  tokensPerSecond: number
  runs: number[]
}

export type RunCOutcome = { ran: true, source: string, sha256: string, steps: number, results: RunCResult[] } | { ran: false, reason: string }

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}

/**
 * run.c on `model` with `tokenizer`, greedy, no prompt (BOS only), `steps` positions,
 * `reps` times per build. Its output text is checked against `expectText` when given, so a
 * wrong or mismatched source cannot produce a figure.
 */
export function runLlama2c (model: string, tokenizer: string, steps: number, reps: number, expectText?: string): RunCOutcome {
  const source = process.env.LLAMA2C_RUN_C ?? join(repoRoot, '.cache', 'llama2c', 'run.c')
  if (!existsSync(source)) return { ran: false, reason: `no llama2.c run.c at ${source} (not in the repository and not downloadable here; place it there or set LLAMA2C_RUN_C)` }
  try {
    execFileSync('gcc', ['--version'], { stdio: 'ignore' })
  } catch {
    return { ran: false, reason: 'no gcc on this machine (Debian package gcc)' }
  }
  const sha256 = createHash('sha256').update(readFileSync(source)).digest('hex')
  const results: RunCResult[] = []
  for (const [build, flags] of Object.entries(RUNC_BUILDS)) {
    const binary = join(repoRoot, '.cache', 'llama2c', `run-${sha256.slice(0, 12)}-${flags.join('').replace(/[^a-zA-Z0-9]/g, '')}`)
    mkdirSync(dirname(binary), { recursive: true })
    if (!existsSync(binary)) execFileSync('gcc', [...flags, '-o', binary, source, '-lm'], { stdio: ['ignore', 'ignore', 'inherit'] })
    const runs: number[] = []
    for (let i = 0; i < reps; i++) {
      const r = spawnSync(binary, [model, '-z', tokenizer, '-t', '0', '-n', String(steps)], { encoding: 'utf8' })
      if (r.status !== 0) throw new Error(`run.c (${build}) exited with ${String(r.status)}: ${r.stderr.slice(0, 200)}`)
      if (expectText !== undefined && r.stdout.replace(/\n$/, '') !== expectText) throw new Error(`run.c (${build}) did not print the golden text for ${steps} steps: wrong source or model`)
      const m = /achieved tok\/s: ([0-9.]+)/.exec(r.stderr)
      if (m === null) throw new Error(`run.c (${build}) printed no "achieved tok/s" line: ${r.stderr.slice(0, 200)}`)
      runs.push(Number(m[1]))
    }
    results.push({ build, tokensPerSecond: median(runs), runs })
  }
  return { ran: true, source, sha256, steps, results }
}
