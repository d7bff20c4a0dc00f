/**
 * Deterministic simulation of election and replication (packages/mesh/test/sim): many
 * seeded schedules of drops, duplicates, delays, partitions and crashes; prints how many
 * ran, what they exercised, and every schedule that broke an invariant (seed + reason).
 *
 *   pnpm bench:sim                                 # 10 000 schedules from seed 1
 *   pnpm bench:sim -- --schedules 50000 --from 100000
 *   pnpm bench:sim -- --restart same-id            # crashed peers return with their old id and no state
 *   pnpm bench:sim -- --seed 92 --trace            # replay one schedule with every message
 */
import { parseArgs } from 'node:util'
import { runSchedule } from '../../packages/mesh/test/sim/world.ts'

const { values } = parseArgs({
  options: {
    schedules: { type: 'string', default: '10000' },
    from: { type: 'string', default: '1' },
    seed: { type: 'string' },
    trace: { type: 'boolean', default: false },
    restart: { type: 'string', default: 'new-id' }
  }
})
const restart = values.restart === 'same-id' ? 'same-id' : 'new-id'

if (values.seed !== undefined) {
  const r = await runSchedule(Number(values.seed), { restart }, values.trace)
  console.log(r.trace.join('\n'))
  console.log(JSON.stringify({ seed: r.seed, config: r.config, stats: r.stats, violation: r.violation ?? null }))
  process.exit(r.violation === undefined ? 0 : 1)
}

const from = Number(values.from)
const count = Number(values.schedules)
const totals = { schedules: 0, failed: 0, events: 0, messages: 0, terms: 0, commits: 0, crashes: 0, partitions: 0, proposals: 0, livenessChecked: 0 }
const failures: Array<{ seed: number, violation: string }> = []
const started = performance.now()
for (let seed = from; seed < from + count; seed++) {
  const r = await runSchedule(seed, { restart })
  totals.schedules++
  for (const k of ['events', 'messages', 'terms', 'commits', 'crashes', 'partitions', 'proposals', 'livenessChecked'] as const) totals[k] += r.stats[k]
  if (r.violation !== undefined) {
    totals.failed++
    failures.push({ seed, violation: r.violation })
    process.stderr.write(`  seed ${seed}: ${r.violation}\n`)
  }
  if (totals.schedules % 1000 === 0) process.stderr.write(`  ${totals.schedules} schedules, ${totals.failed} failed\n`)
}
const seconds = (performance.now() - started) / 1000
console.log(`\n${totals.schedules} schedules (seeds ${from}–${from + count - 1}, restart ${restart}) in ${seconds.toFixed(1)} s: ${totals.failed} broke an invariant`)
console.log(`  ${totals.terms} terms won, ${totals.commits} entries committed, ${totals.proposals} proposals, ${totals.crashes} crashes, ${totals.partitions} partitions, ${totals.livenessChecked} checked for a coordinator after healing, ${totals.messages} messages, ${totals.events} events`)
console.log(JSON.stringify({ restart, ...totals, seconds: Math.round(seconds), failures: failures.slice(0, 50) }))
