import { homedir } from 'node:os'
import { join } from 'node:path'
import type { HistoryRecorder, HistoryStore } from '@shardmesh/history'
import { topicName } from '@shardmesh/mesh'
import type { MeshNode } from '@shardmesh/mesh'
import { createOpenAiHandler } from '@shardmesh/pipeline'
import type { OpenAiHandler, PipelineService, PlanInput } from '@shardmesh/pipeline'
import type { ModelManifest } from '@shardmesh/weights'
import { CliError } from './errors.ts'
import { historyHandler } from './http/history.ts'
import { logger } from './log.ts'

type Values = Record<string, string | boolean | undefined>

/** `--db none` records nothing. */
export const NO_DB = 'none'

/** Where a keyless `shardmesh peer` records: ~/.cache/shardmesh/history/peer-<id>.duckdb. */
export function peerHistoryPath (values: Values, peerId: string): string {
  if (typeof values.db === 'string') return values.db
  // a peer with a key file keeps its history beside it (a respawned local peer reopens its own)
  if (typeof values.key === 'string') return values.key.replace(/(\.key)?$/, '.duckdb')
  return join(homedir(), '.cache', 'shardmesh', 'history', `peer-${peerId}.duckdb`)
}

/** A node's recording: its store and recorder, or why there is none. */
export interface Recording {
  store: HistoryStore | undefined
  unavailable: string | undefined
  /** `GET /api/history/...` for the HTTP server's handler list. */
  handler: ReturnType<typeof historyHandler>
  /** The OpenAI handler, each generation recorded. */
  openAi: (pipeline: Pick<PipelineService<ModelManifest>, 'models'>) => OpenAiHandler
  /** Name this node's HTTP API in `<db>.owner.json`, for `shardmesh history` to read through while the file is held. */
  advertise: (url: string) => void
  /**
   * Decode speed per peer from this node's history (the pipeline's `history` source: the
   * coordinator plans by it). Read at most every PLANNER_HISTORY_MS; undefined while nothing
   * is recorded or the read failed (logged).
   */
  plannerHistory: () => Promise<PlanInput['history']>
  stop: () => Promise<void>
}

/** The planner's history is re-read from the file at most this often (ms). */
export const PLANNER_HISTORY_MS = 2000

/**
 * Open the node's history (`--db PATH`, else `defaultPath`; `--db none`: off) and record what
 * the node sees. An explicit `--db` that cannot be opened fails the command; the default file
 * held by another shardmesh on this machine only turns recording off (logged, and said by
 * `/api/history`).
 */
export async function startRecording (values: Values, init: { node: MeshNode, pipeline?: PipelineService<ModelManifest>, defaultPath: string }): Promise<Recording> {
  const log = logger('history')
  const explicit = typeof values.db === 'string'
  const path = explicit ? String(values.db) : init.defaultPath
  let store: HistoryStore | undefined
  let recorder: HistoryRecorder | undefined
  let unavailable: string | undefined
  if (path === NO_DB) {
    unavailable = 'recording is off (--db none)'
  } else {
    const { historyRecorder, openHistory } = await import('@shardmesh/history') // DuckDB loads only where recording is on
    try {
      store = await openHistory({ path, onError: err => { log.warn(`write failed: ${err.message}`) } })
    } catch (err) {
      if (explicit) throw new CliError(`--db ${path}: ${(err as Error).message}`)
      unavailable = `not recording: ${(err as Error).message}`
      log.warn(unavailable)
    }
    if (store !== undefined) {
      const mesh = init.node.services.mesh
      // browser tabs publish summaries of their metrics on the mesh's `metrics` topic: persist them
      const tabSummaries = { pubsub: init.node.services.pubsub, topic: topicName(mesh.meshId, 'metrics'), admitted: (id: string) => mesh.admitted(id) }
      recorder = await historyRecorder({ store, self: init.node.peerId.toString(), mesh, recoveries: init.pipeline, tabSummaries, onError: err => { log.warn(err.message) } })
      log.info(`recording history in ${store.path}`)
    }
  }
  let cached: { at: number, value: Promise<PlanInput['history']> } | undefined
  const plannerHistory = async (): Promise<PlanInput['history']> => {
    if (store === undefined) return undefined
    if (cached === undefined || Date.now() - cached.at >= PLANNER_HISTORY_MS) {
      const s = store
      const { historyRecommendations, plannerHistory } = await import('@shardmesh/history')
      // speeds from the scores, and the peers the recommendations say to avoid
      cached = { at: Date.now(), value: historyRecommendations(s).then(r => plannerHistory(r.scores, undefined, r.recommendations)).catch(err => { log.warn(`history for the planner: ${(err as Error).message}`); return undefined }) }
    }
    return await cached.value
  }
  return {
    store,
    unavailable,
    plannerHistory,
    handler: historyHandler({ store: () => store, unavailable: () => unavailable, tabSummaries: () => recorder?.tabSummaryStats() }),
    openAi: pipeline => createOpenAiHandler({ models: recorder === undefined ? () => pipeline.models() : recorder.models(() => pipeline.models()) }),
    advertise: url => { store?.advertise(url) },
    stop: async () => {
      recorder?.stop()
      await store?.close()
    }
  }
}
