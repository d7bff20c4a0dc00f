import { afterAll, describe, it } from 'vitest'
import { FUZZ_SEED, runTarget } from './harness.ts'
import { httpTargets } from './targets/http.ts'

/** Request bodies through the real HTTP server: a 4xx JSON error or a completion, never a 5xx or a crash. */
describe(`fuzz: HTTP request bodies (seed ${FUZZ_SEED})`, async () => {
  const http = await httpTargets()
  afterAll(async () => { await http.stop() })
  for (const t of http.targets) {
    it(t.name, async () => {
      const tally = await runTarget(t, FUZZ_SEED, t.runs)
      console.log(`fuzz ${t.name} seed ${FUZZ_SEED}: ${tally.summary()}`)
    }, 120_000)
  }
})
