/**
 * The chaos suite: `shardmesh chaos` (real peer processes, SIGKILL and SIGSTOP at seeded
 * tokens, the seed printed) for each recovery strategy at a level it applies to. Every trial
 * must complete with exactly the failure-free run's tokens; at level none every trial must end
 * with a clear error within seconds, never hang.
 */
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { storiesDir } from '../fixtures.ts'
import { shardmesh } from '../../node-bootstrap/test/run-cli.ts'

const gguf = join(storiesDir(), 'stories260K.gguf')
const SEED = 20261206

interface Trial { victim: string, failure: string, completed: boolean, exact: boolean, injected: boolean, error?: string, failedAfterMs: number | null }

async function chaos (args: string[]): Promise<{ code: number | null, report: { seed: number, trials: Trial[], recoveries: Array<{ ok: boolean, path: string }>, stopped?: string }, stderr: string }> {
  const run = await shardmesh(['chaos', '--model', gguf, '--seed', String(SEED), '--max-tokens', '40', '--trial-timeout', '40', '--json', '--log-level', 'warn', ...args])
  return { code: run.code, report: JSON.parse(run.stdout), stderr: run.stderr }
}

describe('chaos suite: every trial gives the failure-free tokens', () => {
  it.each([
    // level / strategy, peers (enough for the level's standbys), victims, failures, sampled?
    // progressive escalates to the same peer back or a re-plan, so any victims do
    { ft: ['medium', 'progressive'], peers: 4, victims: 'first,middle,last,standby,coordinator,coordinator+stage', failures: 'kill,hang', sampled: false },
    // high: a warm standby per stage, so both primaries of a 2-stage plan may go at once
    { ft: ['high', 'parallel'], peers: 4, victims: 'first,last,standby,consecutive', failures: 'kill,hang', sampled: true },
    // medium keeps one spare: one stage lost at a time
    { ft: ['medium', 'failover'], peers: 4, victims: 'first,middle,last', failures: 'kill', sampled: false },
    // the coordinator and a stage at once out of three peers: the respawned peers return with their keys and the mesh heals
    { ft: ['low', 'restart'], peers: 3, victims: 'first,coordinator+stage', failures: 'kill', sampled: false },
    { ft: ['medium', 'coordinated'], peers: 3, victims: 'first,last', failures: 'kill', sampled: true },
    { ft: ['critical', 'parallel'], peers: 3, victims: 'first,standby', failures: 'kill', sampled: false }
  ])('--ft-level $ft.0 --recovery $ft.1 over $peers peers ($victims; $failures)', async ({ ft, peers, victims, failures, sampled }) => {
    const { code, report, stderr } = await chaos(['--ft-level', ft[0], '--recovery', ft[1], '--peers', String(peers), '--trials', '4', '--victims', victims, '--failures', failures,
      ...(sampled ? ['--temperature', '0.9', '--top-p', '0.9', '--sample-seed', '5'] : [])])
    expect(report.seed).toBe(SEED)
    expect(report.stopped, stderr).toBeUndefined()
    expect(report.trials).toHaveLength(4)
    for (const t of report.trials) expect(t, JSON.stringify(t)).toMatchObject({ completed: true, exact: true })
    expect(report.trials.some(t => t.injected)).toBe(true)
    for (const e of report.recoveries) expect(e.ok).toBe(true)
    expect(code).toBe(0)
  }, 400_000)

  it('at level none a killed stage ends its generation with a clear error from the lost hop, not a timeout', async () => {
    const { code, report } = await chaos(['--ft-level', 'none', '--peers', '3', '--trials', '2', '--victims', 'first,last', '--failures', 'kill'])
    const injected = report.trials.filter(t => t.injected)
    expect(injected.length).toBeGreaterThan(0)
    for (const t of injected) {
      expect(t.completed).toBe(false)
      // the lost hop's own error, not the 60 s step timeout's or the trial's bound
      expect(t.error).toMatch(/fault tolerance level none/)
      expect(t.error).not.toMatch(/TimeoutError|no result within/)
    }
    expect(code).toBe(1)
  }, 300_000)
})
