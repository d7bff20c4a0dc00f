/**
 * The fuzz targets of test/fuzz with many more cases than CI runs, under a seed from the
 * command line; prints cases run, decoded and rejected (by error name) per decoder.
 *
 *   pnpm bench:fuzz [--seed N] [--scale K] [--only SUBSTRING] [--json]
 *
 * --scale multiplies every target's CI case count (default 20). Any failure prints
 * fast-check's report (seed, path, shrunk counterexample) and exits 1.
 */
import { parseArgs } from 'node:util'
import { FUZZ_SEED, runTarget } from '../fuzz/harness.ts'
import type { Target } from '../fuzz/harness.ts'
import { checkpointTargets } from '../fuzz/targets/checkpoints.ts'
import { gossipTargets } from '../fuzz/targets/gossip.ts'
import { httpTargets } from '../fuzz/targets/http.ts'
import { protocolTargets } from '../fuzz/targets/protocol.ts'
import { tokenizerTargets } from '../fuzz/targets/tokenizers.ts'

const { values } = parseArgs({
  options: {
    seed: { type: 'string', default: String(Date.now() % 2 ** 31) },
    scale: { type: 'string', default: '20' },
    only: { type: 'string' },
    json: { type: 'boolean', default: false }
  }
})
const seed = Number(values.seed)
const scale = Number(values.scale)
if (!Number.isSafeInteger(seed) || !(scale > 0)) throw new Error('--seed must be an integer and --scale a positive number')

const http = await httpTargets()
const targets: Target[] = [...protocolTargets(), ...gossipTargets(), ...await checkpointTargets(), ...await tokenizerTargets(), ...http.targets]
  .filter(t => values.only === undefined || t.name.includes(values.only))
console.error(`fuzz bench: seed ${seed} (CI uses ${FUZZ_SEED}), ${targets.length} targets, ×${scale} the CI cases`)

const rows: Array<{ target: string, cases: number, decoded: number, rejected: Record<string, number>, seconds: number }> = []
let failed = false
try {
  for (const t of targets) {
    const started = performance.now()
    try {
      await runTarget(t, seed, Math.round(t.runs * scale))
    } catch (err) {
      failed = true
      console.error(`\n${t.name} FAILED:\n${(err as Error).message.replace(/Counterexample: .{2000,}/, m => `${m.slice(0, 2000)}…`)}\ncaused by: ${String((err as Error).cause)}`)
    }
    const seconds = (performance.now() - started) / 1000
    rows.push({ target: t.name, cases: t.tally.cases, decoded: t.tally.decoded, rejected: Object.fromEntries(t.tally.rejected), seconds })
    if (!values.json) console.log(`${t.name.padEnd(28)} ${String(t.tally.cases).padStart(8)} cases ${seconds.toFixed(1).padStart(7)} s   ${t.tally.summary().replace(/^\d+ cases: /, '')}`)
  }
} finally {
  await http.stop()
}
const total = rows.reduce((a, r) => a + r.cases, 0)
if (values.json) console.log(JSON.stringify({ seed, scale, total, failed, targets: rows }, null, 2))
else console.log(`total ${total} cases, ${failed ? 'FAILURES above' : 'no crash, every rejection typed'} (seed ${seed})`)
process.exit(failed ? 1 : 0)
