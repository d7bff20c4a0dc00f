// API keys for the HTTP API: `--api-key KEY[,KEY…]` and/or SHARDMESH_API_KEYS, sent as
// `Authorization: Bearer KEY` (what OpenAI clients send). Without keys the API is open.
import { createHash, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { ApiError } from '@shardmesh/pipeline'
import { CliError } from '../errors.ts'

/** The environment variable with API keys (comma-separated), added to those of `--api-key`. */
export const API_KEYS_ENV = 'SHARDMESH_API_KEYS'

/**
 * Paths open without a key, so that a browser can join the mesh from the peer page: `/`,
 * `/index.html`, `/peer.json` and `/assets/*`; and the dashboard page (`/dashboard`,
 * `/dashboard/*`: static files, no data — the page sends the key on its `/api/*` requests);
 * `POST /api/admission/join` of a private mesh (its join token is the credential).
 * Everything else — the OpenAI API, `/api/*`, `/metrics`, and unknown paths (401 before 404,
 * as OpenAI answers) — needs a key when keys are set.
 */
export function isOpenPath (path: string): boolean {
  return path === '/' || path === '/index.html' || path === '/peer.json' || path === '/api/admission/join' || path.startsWith('/assets/') || path === '/dashboard' || path.startsWith('/dashboard/')
}

/** The keys of `--api-key` and SHARDMESH_API_KEYS, comma-separated; none means the API is open. */
export function apiKeysOf (values: Record<string, string | boolean | undefined>, env: NodeJS.ProcessEnv = process.env): string[] {
  const flag = values['api-key']
  if (flag !== undefined && (typeof flag !== 'string' || flag.trim() === '')) throw new CliError('--api-key needs a key (or several, comma-separated)')
  const keys = [flag, env[API_KEYS_ENV]].flatMap(v => typeof v === 'string' ? v.split(',') : []).map(k => k.trim()).filter(k => k !== '')
  for (const k of keys) {
    if (/\s/.test(k)) throw new CliError(`an API key may not contain whitespace (--api-key / ${API_KEYS_ENV})`)
  }
  return [...new Set(keys)]
}

const digest = (key: string): Buffer => createHash('sha256').update(key, 'utf8').digest()

/** A key as it may be shown in an error: its start and end, never the whole of it. */
function redact (key: string): string {
  return key.length < 12 ? '*'.repeat(Math.min(key.length, 8)) : `${key.slice(0, 4)}${'*'.repeat(8)}${key.slice(-4)}`
}

/**
 * Checks a request's `Authorization: Bearer KEY` against the keys: each comparison is
 * constant-time over SHA-256 digests (equal lengths whatever the key), and every key is compared,
 * so the time taken says nothing about which key or how much of it matched.
 */
export function apiKeyCheck (keys: string[]): (req: IncomingMessage) => ApiError | undefined {
  const digests = keys.map(digest)
  return req => {
    const header = req.headers.authorization
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null
    if (match === null) {
      return new ApiError(401, 'You didn\'t provide an API key. Send it in the Authorization header: "Authorization: Bearer YOUR_KEY".', { code: 'missing_api_key' })
    }
    const presented = digest(match[1])
    let ok = false
    for (const d of digests) ok = timingSafeEqual(presented, d) || ok
    return ok ? undefined : new ApiError(401, `Incorrect API key provided: ${redact(match[1])}.`, { code: 'invalid_api_key' })
  }
}
