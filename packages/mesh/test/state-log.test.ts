import { describe, expect, it } from 'vitest'
import { compareHeads, StateLog } from '../src/index.ts'

const A = '12D3KooWD8FnYAacpJbGbPo4DnrYKfZYg2XGbwwE5vDY7xt12Au3'
const B = '12D3KooWQPP8s9qybRpQmvBWAV6nH1T1dBHZwgw6pBrEh9456SDY'

describe('StateLog', () => {
  it('applies entries in order and tells duplicates, conflicts, gaps and stale entries apart', () => {
    const log = new StateLog()
    expect(log.apply({ version: 1, term: 1, tx: { op: 'init', members: [A, B] } })).toBe('applied')
    expect(log.apply({ version: 2, term: 1, tx: { op: 'term', coordinator: A } })).toBe('applied')
    expect(log.apply({ version: 3, term: 1, tx: { op: 'set', key: 'k', value: 1 } })).toBe('applied')
    expect(log.current()).toMatchObject({ version: 3, term: 1, config: [A, B], coordinator: { term: 1, peerId: A }, data: { k: 1 } })
    expect(log.apply({ version: 3, term: 1, tx: { op: 'set', key: 'k', value: 1 } })).toBe('duplicate')
    expect(log.apply({ version: 3, term: 2, tx: { op: 'set', key: 'k', value: 2 } })).toBe('conflict')
    expect(log.apply({ version: 5, term: 1, tx: { op: 'delete', key: 'k' } })).toBe('gap')
    expect(log.apply({ version: 4, term: 2, tx: { op: 'remove', peerId: B, reason: 'dead' } })).toBe('applied')
    expect(log.apply({ version: 5, term: 1, tx: { op: 'add', peerId: B } })).toBe('conflict') // an older term after a newer one
    expect(log.config).toEqual([A])
    expect(log.entriesAfter(2)?.map(e => e.version)).toEqual([3, 4])

    const copy = new StateLog()
    copy.restore(log.snapshot())
    expect(copy.current()).toEqual(log.current())
    expect(copy.apply({ version: 2, term: 1, tx: { op: 'term', coordinator: A } })).toBe('stale') // before the snapshot: cannot be checked
    expect(copy.apply({ version: 5, term: 2, tx: { op: 'add', peerId: B } })).toBe('applied')
    expect(copy.config).toEqual([A, B])
    log.snapshot().data.k = 99
    expect(log.current().data).toEqual({ k: 1 }) // snapshots are copies
  })

  it('orders heads by term, then version', () => {
    expect(compareHeads({ term: 2, version: 1 }, { term: 1, version: 50 })).toBeGreaterThan(0)
    expect(compareHeads({ term: 2, version: 3 }, { term: 2, version: 4 })).toBeLessThan(0)
    expect(compareHeads({ term: 2, version: 4 }, { term: 2, version: 4 })).toBe(0)
  })

  it('checkpoints every 32 versions and keeps a bounded window of entries', () => {
    const log = new StateLog()
    for (let v = 1; v <= 300; v++) log.apply({ version: v, term: 1, tx: { op: 'set', key: 'n', value: v } })
    expect(log.lastCheckpoint().version).toBe(288)
    expect(log.entriesAfter(10)).toBeUndefined()
    expect(log.entriesAfter(290)).toHaveLength(10)
  })
})
