import { describe, it } from 'vitest'
import { FUZZ_SEED, runTarget } from './harness.ts'
import type { Target } from './harness.ts'

/**
 * One vitest case per target, `target.runs` cases each with the fixed seed; the tally
 * (cases, decoded, rejections by error name) is printed so CI logs show what ran.
 */
export function fuzzSuite (title: string, targets: () => Target[] | Promise<Target[]>, timeoutMs = 60_000): void {
  describe(`${title} (seed ${FUZZ_SEED})`, async () => {
    for (const t of await targets()) {
      it(t.name, async () => {
        const tally = await runTarget(t, FUZZ_SEED, t.runs)
        console.log(`fuzz ${t.name} seed ${FUZZ_SEED}: ${tally.summary()}`)
      }, timeoutMs)
    }
  })
}
