import { describe, expect, it } from 'vitest'
import { OutputLog } from '../src/output-log.ts'

const rows = (position: number, n: number, dim = 2): Float32Array => Float32Array.from({ length: n * dim }, (_, i) => position * dim + i)

describe('output log', () => {
  it('truncating inside an entry keeps the rows before the cut, in order', () => {
    const log = new OutputLog(100)
    log.append(0, 4, rows(0, 4))
    log.append(4, 1, rows(4, 1))
    log.truncate(2)
    expect(log.length).toBe(2)
    expect(log.replay().map(e => [e.position, e.n, [...(e.data as Float32Array)]])).toEqual([[0, 2, [0, 1, 2, 3]]])
    log.append(2, 1, rows(2, 1))
    expect(log.replay().map(e => e.position)).toEqual([0, 2])
  })

  it('past its byte bound it stops logging and says it can no longer replay; positions past the context are refused', () => {
    const log = new OutputLog(100, 40) // 40 bytes: five rows of two F32
    log.append(0, 4, rows(0, 4))
    expect(log.complete).toBe(true)
    log.append(4, 2, rows(4, 2))
    expect(log.complete).toBe(false)
    expect(log.length).toBe(4)
    expect(() => { log.append(99, 2, rows(99, 2)) }).toThrow(RangeError)
  })
})
