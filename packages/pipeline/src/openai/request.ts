import type { IncomingMessage } from 'node:http'
import type { SamplingParams } from '@shardmesh/engine'
import { preview } from '@shardmesh/model'
import { ApiError, invalid } from './errors.ts'
import { FT_LEVELS, RECOVERY_STRATEGIES } from '../fault-tolerance.ts'
import type { FaultTolerance, FtLevel, RecoveryStrategy } from '../fault-tolerance.ts'

/** Largest request body read. */
export const MAX_BODY_BYTES = 1 << 20

/** The request body as JSON: 413 above the limit, 400 when it does not parse. */
export async function readJson (req: IncomingMessage, maxBytes = MAX_BODY_BYTES): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > maxBytes) throw new ApiError(413, `request body exceeds ${maxBytes} bytes`, { code: 'request_too_large' })
    chunks.push(chunk)
  }
  let value: unknown
  try {
    value = JSON.parse(Buffer.concat(chunks).toString('utf8'))
  } catch (err) {
    throw new ApiError(400, `We could not parse the JSON body of your request: ${(err as Error).message}`, { code: 'invalid_json' })
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ApiError(400, 'the request body must be a JSON object', { code: 'invalid_json' })
  return value as Record<string, unknown>
}

function optNumber (body: Record<string, unknown>, key: string, min: number, max: number, integer = false): number | undefined {
  const v = body[key]
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
    throw invalid(key, `'${key}' must be a${integer ? ' whole' : ''} number in [${min}, ${max}], got ${preview(v)}`)
  }
  return v
}

export interface CommonParams {
  model: string
  maxTokens: number | undefined
  sampling: SamplingParams
  stop: string[]
  stream: boolean
  includeUsage: boolean
  /** The `shardmesh` extension field: `{ ft_level, recovery }` for this request. */
  faultTolerance: Partial<FaultTolerance>
}

/** `shardmesh: { ft_level?, recovery? }`: this request's fault tolerance over the head's. */
function faultToleranceOf (body: Record<string, unknown>): Partial<FaultTolerance> {
  const ext = body.shardmesh
  if (ext === undefined || ext === null) return {}
  if (typeof ext !== 'object' || Array.isArray(ext)) throw invalid('shardmesh', "'shardmesh' must be an object: { ft_level?, recovery? }")
  const { ft_level: level, recovery } = ext as Record<string, unknown>
  if (level !== undefined && !FT_LEVELS.includes(level as FtLevel)) throw invalid('shardmesh.ft_level', `'shardmesh.ft_level' must be one of ${FT_LEVELS.join(', ')}`)
  if (recovery !== undefined && !RECOVERY_STRATEGIES.includes(recovery as RecoveryStrategy)) throw invalid('shardmesh.recovery', `'shardmesh.recovery' must be one of ${RECOVERY_STRATEGIES.join(', ')}`)
  return { ...(level === undefined ? {} : { level: level as FtLevel }), ...(recovery === undefined ? {} : { recovery: recovery as RecoveryStrategy }) }
}

/** Fields shared by completions and chat completions. */
export function commonParams (body: Record<string, unknown>): CommonParams {
  if (typeof body.model !== 'string' || body.model === '') throw invalid('model', "'model' must be a non-empty string")
  const maxTokens = optNumber(body, 'max_completion_tokens', 1, 1e9, true) ?? optNumber(body, 'max_tokens', 1, 1e9, true)
  const n = optNumber(body, 'n', 1, 1, true)
  void n
  const stopValue = body.stop ?? []
  const stop = typeof stopValue === 'string' ? [stopValue] : stopValue
  if (!Array.isArray(stop) || stop.length > 4 || !stop.every(s => typeof s === 'string' && s !== '')) throw invalid('stop', "'stop' must be a string or up to 4 non-empty strings")
  if (body.stream !== undefined && body.stream !== null && typeof body.stream !== 'boolean') throw invalid('stream', "'stream' must be a boolean")
  const opts = body.stream_options as { include_usage?: unknown } | undefined | null
  return {
    model: body.model,
    maxTokens,
    sampling: {
      temperature: optNumber(body, 'temperature', 0, 2) ?? 1,
      topP: optNumber(body, 'top_p', 0, 1) ?? 1,
      topK: optNumber(body, 'top_k', 0, 1e6, true) ?? 0,
      seed: optNumber(body, 'seed', 0, 2 ** 32 - 1, true) ?? 0
    },
    stop,
    stream: body.stream === true,
    includeUsage: opts?.include_usage === true,
    faultTolerance: faultToleranceOf(body)
  }
}
