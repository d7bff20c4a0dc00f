import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { storiesDir } from '../fixtures.ts'
import { shardmesh } from '../../node-bootstrap/test/run-cli.ts'

const gguf = join(storiesDir(), 'stories260K.gguf')

describe('shardmesh chaos', () => {
  it('kills real peer processes at seeded tokens and reports every trial honestly', async () => {
    const run = await shardmesh(['chaos', '--model', gguf, '--peers', '3', '--trials', '3', '--seed', '7', '--failures', 'kill,hang', '--max-tokens', '32', '--trial-timeout', '15', '--json'])
    expect(run.stdout.trim().split('\n')).toHaveLength(1) // one JSON object, whatever the outcome
    const r = JSON.parse(run.stdout)
    expect(r.seed).toBe(7)
    expect(r.peers).toBe(3)
    expect(r.referenceTokens).toBeGreaterThanOrEqual(2)
    if (r.stopped === undefined) expect(r.trials).toHaveLength(3)
    else expect(r.trials.length).toBeLessThan(3) // ended early, and says why (the mesh did not heal)
    for (const t of r.trials) {
      expect(['first', 'middle', 'last', 'standby', 'coordinator']).toContain(t.victim)
      expect(['kill', 'hang']).toContain(t.failure)
      expect(t.killAtToken).toBeGreaterThanOrEqual(1)
      expect(t.killAtToken).toBeLessThan(r.referenceTokens)
      expect(t.peerIds).toHaveLength(1) // the default victims are single peers
      expect(t.peerIds[0]).toMatch(/^12D3KooW/)
      expect(t.pids[0]).toBeGreaterThan(0)
      if (t.completed) {
        expect(t.injected).toBe(true) // a generation cannot complete before the token it is killed at
        expect(t.error).toBeUndefined()
        if (t.exact === true) expect(t.tokens).toBe(r.referenceTokens)
        expect(t.stallMs).toBeGreaterThan(0)
        expect(t.failedAfterMs).toBeNull()
      } else {
        expect(t.exact).toBe(false)
        expect(t.stallMs).toBeNull()
        expect(typeof t.error).toBe('string')
        expect(t.error.length).toBeGreaterThan(0)
        expect(t.tokens).toBeLessThan(r.referenceTokens)
        if (t.injected === true) expect(t.failedAfterMs).toBeGreaterThanOrEqual(0)
        else expect(t.failedAfterMs).toBeNull()
      }
    }
    const completed = r.trials.filter((t: { completed: boolean }) => t.completed).length
    const exact = r.trials.filter((t: { exact: boolean }) => t.exact).length
    expect(r.summary).toMatchObject({ trials: r.trials.length, completed, exact })
    expect(r.summary.stallMs.n).toBe(completed)
    // failing trials make the exit status say so
    expect(run.code).toBe(exact === 3 ? 0 : 1)
    // the first victim was really taken down, and came back as the same peer (its key is kept)
    const first = r.trials[0]
    if (first.injected === true) {
      expect(run.stderr).toMatch(new RegExp(`local peer \\d \\(pid ${String(first.pids[0])}\\) exited \\(SIGKILL\\); respawning`))
      expect(run.stderr).toContain(`back as ${String(first.peerIds[0])}`)
    }
    for (const e of r.recoveries) expect(['replay', 'reprefill', 'none']).toContain(e.path)
  }, 300_000)

  it('refuses bad options with a clear message', async () => {
    const cases: Array<[string[], string]> = [
      [['chaos'], '--model is required'],
      [['chaos', '--model', gguf, '--peers', '1'], '--peers must be a whole number 2–16, got "1"'],
      [['chaos', '--model', gguf, '--trials', 'many'], '--trials must be a whole number'],
      [['chaos', '--model', gguf, '--victims', 'first,bystander'], '--victims takes a comma-separated list of first, middle, last, standby, coordinator'],
      [['chaos', '--model', gguf, '--failures', 'explode'], '--failures takes a comma-separated list of kill, hang'],
      [['chaos', '--model', gguf, '--recovery', 'hope'], '--recovery must be one of']
    ]
    for (const [args, message] of cases) {
      const r = await shardmesh(args)
      expect(r.code).toBe(2)
      expect(r.stderr).toContain(message)
    }
  })
})
