/** Rows as the store takes them: `ts` is ms since the epoch; arrays and objects are stored as JSON text. */
export interface Rows {
  sharding_runs: { id: string, ts: number, node: string, model: string, plan_version: number, strategy: string, n_layers: number, coordinator: string | null, term: number | null, stages: number }
  plan_stages: { run_id: string, stage: number, l0: number, l1: number, peer: string, standbys: string[], bytes: number, reason: string }
  generations: { id: string, ts: number, node: string, model: string, plan_version: number | null, route: string[], prompt_tokens: number, tokens: number, finish_reason: string, recoveries: number, prefill_ms: number, decode_ms: number, prefill_tps: number, decode_tps: number }
  /** `scope` 'route': the whole pipeline as the head saw it (stage null); 'stage': one stage (stage, peer and range set). */
  timings: { generation_id: string | null, ts: number, node: string, scope: 'route' | 'stage', stage: number | null, peer: string | null, l0: number | null, l1: number | null, component: string, ms: number, tokens: number | null }
  recovery_events: { ts: number, node: string, session: string, failed: string[], stages: number[], class: string, level: string, strategy: string, path: string, detection_ms: number, stall_ms: number, tokens_replayed: number, ok: boolean, error: string | null }
  peer_samples: { ts: number, node: string, peer: string, runtime: string, backend: string, model: string, op: string, value: number, unit: string, source: string }
  peer_events: { ts: number, node: string, peer: string, status: string, reason: string | null }
  capability_scores: { ts: number, peer: string, runtime: string, backend: string, score: number, confidence: number, samples: number, speed: number, basis: string }
  recommendations: { ts: number, kind: string, subject: string, model: string | null, value: string, reason: string }
  /** One metric of a browser tab's summary (`peer`: the tab, as gossipsub verified the sender; `node`: the node that recorded it). */
  browser_metrics: { ts: number, node: string, peer: string, browser: string, version: string | null, backend: string, adapter: string | null, metric: string, value: number, unit: string | null }
}

export type TableName = keyof Rows

/** Column order of each table (as created by the migrations). */
export const COLUMNS: { [T in TableName]: Array<keyof Rows[T] & string> } = {
  sharding_runs: ['id', 'ts', 'node', 'model', 'plan_version', 'strategy', 'n_layers', 'coordinator', 'term', 'stages'],
  plan_stages: ['run_id', 'stage', 'l0', 'l1', 'peer', 'standbys', 'bytes', 'reason'],
  generations: ['id', 'ts', 'node', 'model', 'plan_version', 'route', 'prompt_tokens', 'tokens', 'finish_reason', 'recoveries', 'prefill_ms', 'decode_ms', 'prefill_tps', 'decode_tps'],
  timings: ['generation_id', 'ts', 'node', 'scope', 'stage', 'peer', 'l0', 'l1', 'component', 'ms', 'tokens'],
  recovery_events: ['ts', 'node', 'session', 'failed', 'stages', 'class', 'level', 'strategy', 'path', 'detection_ms', 'stall_ms', 'tokens_replayed', 'ok', 'error'],
  peer_samples: ['ts', 'node', 'peer', 'runtime', 'backend', 'model', 'op', 'value', 'unit', 'source'],
  peer_events: ['ts', 'node', 'peer', 'status', 'reason'],
  capability_scores: ['ts', 'peer', 'runtime', 'backend', 'score', 'confidence', 'samples', 'speed', 'basis'],
  recommendations: ['ts', 'kind', 'subject', 'model', 'value', 'reason'],
  browser_metrics: ['ts', 'node', 'peer', 'browser', 'version', 'backend', 'adapter', 'metric', 'value', 'unit']
}

/** Every table (and the `performance` view), in export order. */
export const TABLES = Object.keys(COLUMNS) as TableName[]
