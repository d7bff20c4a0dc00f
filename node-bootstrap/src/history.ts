import { homedir } from 'node:os'
import { join } from 'node:path'
import type { HistoryRecorder, HistoryStore } from '@shardmesh/history'
import type { MeshNode } from '@shardmesh/mesh'
import { createOpenAiHandler } from '@shardmesh/pipeline'
import type { OpenAiHandler, PipelineService } from '@shardmesh/pipeline'
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
  openAi: (pipeline: PipelineService<ModelManifest>) => OpenAiHandler
  /** Name this node's HTTP API in `<db>.owner.json`, for `shardmesh history` to read through while the file is held. */
  advertise: (url: string) => void
  stop: () => Promise<void>
}

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
      recorder = await historyRecorder({ store, self: init.node.peerId.toString(), mesh: init.node.services.mesh, recoveries: init.pipeline, onError: err => { log.warn(err.message) } })
      log.info(`recording history in ${store.path}`)
    }
  }
  return {
    store,
    unavailable,
    handler: historyHandler({ store: () => store, unavailable: () => unavailable }),
    openAi: pipeline => createOpenAiHandler({ models: recorder === undefined ? () => pipeline.models() : recorder.models(() => pipeline.models()) }),
    advertise: url => { store?.advertise(url) },
    stop: async () => {
      recorder?.stop()
      await store?.close()
    }
  }
}
