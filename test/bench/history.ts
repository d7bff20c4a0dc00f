/**
 * What recording history costs decode throughput (issue 14: < 1%). One process, one run:
 * stories260K on the CPU backend generates back to back, in rounds that alternate between
 * recording off and on. With recording on, a real DuckDB file and a HistoryRecorder bound to a
 * real (lone) mesh peer record every generation as a head does (a generations row and two
 * timings rows), far more often than a mesh's requests would. Decode tokens/s of a round =
 * decoded positions / decode time, summed over its generations; the figure is the median
 * over rounds of each kind.
 *
 *   node test/bench/history.ts [--rounds 7] [--round-ms 3000] [--tokens 64]
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { cpuBackend, generate } from '@shardmesh/engine'
import { historyRecorder, openHistory } from '@shardmesh/history'
import { createMeshPeer } from '@shardmesh/mesh'
import { loadModel } from '@shardmesh/model/node'
import { storiesDir } from '../fixtures.ts'

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '7' }, 'round-ms': { type: 'string', default: '3000' }, tokens: { type: 'string', default: '64' } } })
const rounds = Number(values.rounds)
const roundMs = Number(values['round-ms'])
const maxTokens = Number(values.tokens)

const model = await loadModel(join(storiesDir(), 'stories260K.bin'), { tokenizerPath: join(storiesDir(), 'tok512.bin') })
const config = model.config
const stage = await cpuBackend().createStage({ config, layers: [0, config.nLayers], tensors: model.tensors })
const prompt = [1, 403, 407, 261, 378] // BOS + "Once upon a time"

const dir = mkdtempSync(join(tmpdir(), 'bench-history-'))
const node = await createMeshPeer({ listen: ['/ip4/127.0.0.1/tcp/0'] })
const store = await openHistory({ path: join(dir, 'bench.duckdb') })
const recorder = await historyRecorder({ store, self: node.peerId.toString(), mesh: node.services.mesh })

/**
 * One round: generations until `roundMs` passed. Decode tokens/s over the round, and the
 * process's CPU time (all threads: DuckDB's commits included) per decoded token, which a
 * loaded machine disturbs less than wall-clock time.
 */
async function round (record: boolean): Promise<{ tps: number, cpuUsPerToken: number, generations: number }> {
  const cpu0 = process.cpuUsage()
  let decoded = 0
  let decodeMs = 0
  let generations = 0
  const end = performance.now() + roundMs
  while (performance.now() < end) {
    const session = stage.createSession()
    try {
      const r = await generate({ sessions: [session], promptTokens: prompt, maxTokens, contextLength: config.contextLength })
      decoded += Math.max(0, r.tokens.length - 1)
      decodeMs += r.timings.decodeMs
      generations++
      if (record) recorder.generation(config.name, prompt.length, { ...r, recoveries: [] })
    } finally {
      session.close()
    }
  }
  if (record) await store.flush() // the round pays for its own commits
  const cpu = process.cpuUsage(cpu0)
  return { tps: decoded / (decodeMs / 1000), cpuUsPerToken: (cpu.user + cpu.system) / decoded, generations }
}

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 === 1 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2 }

await round(false) // warm up
const off: number[] = []
const on: number[] = []
const cpuOff: number[] = []
const cpuOn: number[] = []
let recorded = 0
for (let i = 0; i < rounds; i++) {
  // alternate which kind goes first, so a drift of the machine's load hits both alike
  const order = i % 2 === 0 ? [false, true] : [true, false]
  for (const record of order) {
    const r = await round(record)
    ;(record ? on : off).push(r.tps)
    ;(record ? cpuOn : cpuOff).push(r.cpuUsPerToken)
    if (record) recorded += r.generations
  }
}
await store.flush()
const rows = Number((await store.query('SELECT count(*) AS n FROM generations'))[0].n)

/**
 * The recording alone, without the model: CPU time of queueing one generation's rows and
 * committing them, in batches of the size the rounds above flushed at once (a second's worth).
 */
const perFlush = Math.max(1, Math.round(recorded / rounds / (roundMs / 1000)))
const sample = await generate({ sessions: [stage.createSession()], promptTokens: prompt, maxTokens, contextLength: config.contextLength })
const recordingOnly: number[] = []
for (let i = 0; i < rounds; i++) {
  const cpu0 = process.cpuUsage()
  for (let g = 0; g < perFlush; g++) recorder.generation(config.name, prompt.length, { ...sample, recoveries: [] })
  await store.flush()
  const cpu = process.cpuUsage(cpu0)
  recordingOnly.push((cpu.user + cpu.system) / perFlush)
}
recorder.stop()
await store.close()
await node.stop()
rmSync(dir, { recursive: true, force: true })

const mOff = median(off)
const mOn = median(on)
const result = {
  model: config.name,
  rounds,
  roundMs,
  maxTokens,
  decodeTokensPerSecond: { off: Math.round(mOff * 10) / 10, on: Math.round(mOn * 10) / 10 },
  overheadPercent: Math.round(1000 * (mOff - mOn) / mOff) / 10,
  cpuUsPerDecodedToken: { off: Math.round(median(cpuOff) * 10) / 10, on: Math.round(median(cpuOn) * 10) / 10 },
  cpuOverheadPercent: Math.round(1000 * (median(cpuOn) - median(cpuOff)) / median(cpuOff)) / 10,
  cpuUsPerRecordedGeneration: Math.round(median(recordingOnly)),
  generationsPerFlush: perFlush,
  generationsRecorded: recorded,
  generationsCommitted: rows,
  perRound: { off: off.map(x => Math.round(x)), on: on.map(x => Math.round(x)) }
}
console.log(JSON.stringify(result))
console.log(`median of ${rounds} rounds of ${roundMs} ms each   decode tok/s   CPU µs per decoded token
  recording off                      ${String(result.decodeTokensPerSecond.off).padStart(9)}   ${result.cpuUsPerDecodedToken.off}
  recording on                       ${String(result.decodeTokensPerSecond.on).padStart(9)}   ${result.cpuUsPerDecodedToken.on}
  cost of recording                  ${String(result.overheadPercent + '%').padStart(9)}   ${result.cpuOverheadPercent}%   (${recorded} generations recorded, ${rows} committed)
  recording alone: ${result.cpuUsPerRecordedGeneration} µs of CPU per generation (3 rows), committed ${perFlush} generations at a time`)
