import { createHash, randomBytes } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { ADMISSION_ROLES, decodeTicket, isPeerIdString, issueTicket, peerIdOfKey, privateMeshId, signRevocation } from '@shardmesh/mesh'
import type { AdmissionRole, Mesh } from '@shardmesh/mesh'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { ApiError } from '@shardmesh/pipeline'
import { CliError } from '../errors.ts'
import { loadOrCreateKey } from '../peer-key.ts'

type PrivateKey = Awaited<ReturnType<typeof loadOrCreateKey>>
import { storeDir } from './import.ts'

type Values = Record<string, string | boolean | undefined>

/** `--expires` when not given. */
export const DEFAULT_TICKET_LIFETIME = '30d'
const BODY_LIMIT = 4096
const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** `7d`, `12h`, `30m`, `90s` → milliseconds. */
export function lifetimeMs (text: string): number {
  const m = /^(\d+)([smhd])$/.exec(text.trim())
  const ms = m === null ? NaN : Number(m[1]) * UNITS[m[2]]
  if (!Number.isSafeInteger(ms) || ms <= 0) throw new CliError(`--expires takes a lifetime like 7d, 12h, 30m or 90s, got "${text}"`)
  return ms
}

export function rolesOf (text: string): AdmissionRole[] {
  const roles = [...new Set(text.split(',').map(s => s.trim()).filter(s => s.length > 0))]
  if (roles.length === 0 || !roles.every(r => (ADMISSION_ROLES as readonly string[]).includes(r))) throw new CliError(`--roles takes ${ADMISSION_ROLES.join(',')} (one or both), got "${text}"`)
  return roles as AdmissionRole[]
}

function checkPeerId (id: string): string {
  if (!isPeerIdString(id)) throw new CliError(`"${id.slice(0, 80)}" is not a peer id`)
  return id
}

/** The operator of a private mesh: its key (`<store>/operator.key`, created if missing) and mesh id. */
export async function loadOperator (values: Values): Promise<{ key: PrivateKey, meshId: string }> {
  const key = await loadOrCreateKey(join(storeDir(values), 'operator.key'))
  return { key, meshId: privateMeshId(peerIdOfKey(key)) }
}

export async function ticketFor (operator: { key: PrivateKey, meshId: string }, peerId: string, roles: AdmissionRole[], lifetime: number): Promise<string> {
  const now = Date.now()
  return await issueTicket(operator.key, { mesh: operator.meshId, peer: peerId, roles, issued: now, expires: now + lifetime })
}

/** A new node identity and its ticket (the start node and its local peers are admitted by their operator). */
export async function admittedKey (operator: { key: PrivateKey, meshId: string }, key?: PrivateKey): Promise<{ key: PrivateKey, ticket: string }> {
  const k = key ?? await generateKeyPair('Ed25519')
  return { key: k, ticket: await ticketFor(operator, peerIdOfKey(k), ['compute', 'head'], lifetimeMs('3650d')) }
}

/** `--ticket FILE|STRING` → the ticket string and its mesh id (its signature is checked when the mesh starts). */
export function ticketOf (values: Values): { ticket: string, meshId: string } | undefined {
  const raw = values.ticket
  if (raw === undefined) return undefined
  if (typeof raw !== 'string' || raw.trim() === '') throw new CliError('--ticket takes a ticket string or a file holding one')
  const ticket = (existsSync(raw) ? readFileSync(raw, 'utf8') : raw).trim()
  try {
    return { ticket, meshId: decodeTicket(ticket).mesh }
  } catch (err) {
    throw new CliError(`--ticket: ${(err as Error).message}`)
  }
}

async function readJson (req: IncomingMessage): Promise<Record<string, unknown>> {
  let text = ''
  for await (const chunk of req) {
    text += String(chunk)
    if (text.length > BODY_LIMIT) throw new ApiError(413, `body over ${BODY_LIMIT} bytes`, { code: 'body_too_large' })
  }
  let body: unknown
  try { body = JSON.parse(text) } catch { throw new ApiError(400, 'the body must be JSON', { code: 'invalid_json' }) }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ApiError(400, 'the body must be a JSON object', { code: 'invalid_body' })
  return body as Record<string, unknown>
}

/** `start --private`: how long the join token printed in the peer page URL lasts. */
export const DEFAULT_JOIN_LIFETIME = '24h'

/**
 * Join tokens of a private mesh: a bearer secret (32 random bytes, base64url) that lets whoever
 * holds it obtain a ticket for *its own* peer id, with the token's roles, until the token
 * expires — what a browser tab needs, since its peer id exists only once the page is open. The
 * start node keeps them in memory (a restart invalidates them) and stores only their SHA-256.
 */
export class JoinTokens {
  private readonly tokens = new Map<string, { roles: AdmissionRole[], expires: number }>()

  create (roles: AdmissionRole[], lifetime: number, now = Date.now()): { token: string, expires: number } {
    const token = randomBytes(32).toString('base64url')
    const expires = now + lifetime
    this.tokens.set(digest(token), { roles, expires })
    return { token, expires }
  }

  /** The roles and expiry of a live token; undefined for an unknown or expired one. */
  redeem (token: string, now = Date.now()): { roles: AdmissionRole[], expires: number } | undefined {
    const key = digest(token)
    const t = this.tokens.get(key)
    if (t === undefined) return undefined
    if (t.expires <= now) { this.tokens.delete(key); return undefined }
    return t
  }
}

function digest (token: string): string {
  return createHash('sha256').update(token).digest('hex')
}

/**
 * The operator's HTTP routes on `start --private` (behind the API key like every API route):
 * `POST /api/admission/admit {peerId, roles?, expires?}` issues a ticket and puts it in the
 * replicated state (a running peer takes it from there), answering `{ticket}`;
 * `POST /api/admission/revoke {peerId}` puts a signed revocation of the peer's tickets issued
 * until now in the state, answering `{revocation}`. Both answer once this node's copy of the
 * state holds the record (the coordinator committed it).
 * `POST /api/admission/join-token {roles?, expires?}` makes a join token (`{token, expires}`);
 * `POST /api/admission/join {token, peerId}` — open: the token is the credential — issues a
 * ticket for `peerId` with the token's roles, expiring with the token, puts it in the state
 * and answers `{peerId, meshId, ticket}` (403 `invalid_join_token` for an unknown or expired one).
 */
export function admissionHandler (init: { operator: { key: PrivateKey, meshId: string }, mesh: Pick<Mesh, 'publishAdmission'>, joinTokens: JoinTokens }): (req: IncomingMessage, res: ServerResponse) => Promise<boolean> {
  return async (req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname
    if (!['/api/admission/admit', '/api/admission/revoke', '/api/admission/join', '/api/admission/join-token'].includes(path)) return false
    if (req.method !== 'POST') throw new ApiError(405, `${req.method ?? ''} is not allowed on ${path}`, { code: 'method_not_allowed' })
    const body = await readJson(req)
    let peerId: string
    let out: Record<string, unknown>
    try {
      if (path.endsWith('/join-token')) {
        out = init.joinTokens.create(rolesOf(typeof body.roles === 'string' ? body.roles : 'compute'), lifetimeMs(typeof body.expires === 'string' ? body.expires : DEFAULT_JOIN_LIFETIME))
        return reply(res, out)
      }
      peerId = checkPeerId(String(body.peerId))
      if (path.endsWith('/join')) {
        const grant = typeof body.token === 'string' ? init.joinTokens.redeem(body.token) : undefined
        if (grant === undefined) throw new ApiError(403, 'unknown or expired join token', { code: 'invalid_join_token' })
        const ticket = await issueTicket(init.operator.key, { mesh: init.operator.meshId, peer: peerId, roles: grant.roles, issued: Date.now(), expires: grant.expires })
        await init.mesh.publishAdmission({ ticket }, { signal: AbortSignal.timeout(30_000) })
        return reply(res, { peerId, meshId: init.operator.meshId, ticket })
      }
      if (path.endsWith('/admit')) {
        const ticket = await ticketFor(init.operator, peerId, rolesOf(typeof body.roles === 'string' ? body.roles : 'compute,head'), lifetimeMs(typeof body.expires === 'string' ? body.expires : DEFAULT_TICKET_LIFETIME))
        await init.mesh.publishAdmission({ ticket }, { signal: AbortSignal.timeout(30_000) })
        out = { peerId, ticket }
      } else {
        const revocation = await signRevocation(init.operator.key, { mesh: init.operator.meshId, peer: peerId, before: Date.now() })
        await init.mesh.publishAdmission({ revocation }, { signal: AbortSignal.timeout(30_000) })
        out = { peerId, revocation }
      }
    } catch (err) {
      if (err instanceof CliError) throw new ApiError(400, err.message, { code: 'invalid_request' })
      throw err
    }
    return reply(res, out)
  }
}

function reply (res: ServerResponse, out: Record<string, unknown>): true {
  const text = JSON.stringify(out)
  res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) })
  res.end(text)
  return true
}

/** `shardmesh admit PEERID [--roles compute,head] [--expires 7d] [--revoke] [--url URL]`. */
export async function admitCommand (values: Values): Promise<void> {
  if (values.join === true) { await joinCommand(values); return }
  if (typeof values.peer !== 'string') throw new CliError('give the PEERID to admit (or revoke)')
  const peerId = checkPeerId(values.peer)
  const roles = typeof values.roles === 'string' ? values.roles : 'compute,head'
  const expires = typeof values.expires === 'string' ? values.expires : DEFAULT_TICKET_LIFETIME
  rolesOf(roles)
  lifetimeMs(expires)
  if (typeof values.url !== 'string') {
    if (values.revoke === true) throw new CliError('--revoke needs --url of the running `start --private` node (it puts the revocation in the mesh state)')
    // offline: sign with the operator key of the store; the peer joins with --ticket
    const operator = await loadOperator(values)
    const ticket = await ticketFor(operator, peerId, rolesOf(roles), lifetimeMs(expires))
    process.stdout.write(values.json === true ? JSON.stringify({ peerId, meshId: operator.meshId, ticket }) + '\n' : `${ticket}\n`)
    return
  }
  const key = typeof values['api-key'] === 'string' ? values['api-key'] : process.env.SHARDMESH_API_KEYS?.split(',')[0]
  const res = await fetch(new URL(values.revoke === true ? '/api/admission/revoke' : '/api/admission/admit', values.url), {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key === undefined ? {} : { authorization: `Bearer ${key}` }) },
    body: JSON.stringify({ peerId, roles, expires })
  }).catch(err => { throw new CliError(`cannot reach ${values.url as string}: ${(err as Error).message}`) })
  const body = await res.json() as { ticket?: string, error?: { message: string } }
  if (!res.ok) throw new CliError(`${values.url as string} answered ${res.status}: ${body.error?.message ?? ''}`)
  process.stdout.write(values.json === true ? JSON.stringify(body) + '\n' : values.revoke === true ? `revoked ${peerId}\n` : `${body.ticket ?? ''}\n`)
}

/** `shardmesh admit --join --url URL`: a join token from the running node, printed as the peer page URL that carries it. */
async function joinCommand (values: Values): Promise<void> {
  if (typeof values.url !== 'string') throw new CliError('--join needs --url of the running `start --private` node (it keeps the token)')
  if (values.peer !== undefined) throw new CliError('--join takes no PEERID: whoever opens the URL is admitted')
  // the CLI's defaults are a ticket's (compute,head for 30d); a join token's are compute for 24h
  const roles = values.roles === 'compute,head' ? 'compute' : String(values.roles)
  const expires = values.expires === DEFAULT_TICKET_LIFETIME ? DEFAULT_JOIN_LIFETIME : String(values.expires)
  rolesOf(roles)
  lifetimeMs(expires)
  const key = typeof values['api-key'] === 'string' ? values['api-key'] : process.env.SHARDMESH_API_KEYS?.split(',')[0]
  const res = await fetch(new URL('/api/admission/join-token', values.url), {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key === undefined ? {} : { authorization: `Bearer ${key}` }) },
    body: JSON.stringify({ roles, expires })
  }).catch(err => { throw new CliError(`cannot reach ${values.url as string}: ${(err as Error).message}`) })
  const body = await res.json() as { token?: string, expires?: number, error?: { message: string } }
  if (!res.ok || body.token === undefined) throw new CliError(`${values.url as string} answered ${res.status}: ${body.error?.message ?? ''}`)
  const url = joinUrl(new URL('/', values.url).href, body.token)
  process.stdout.write(values.json === true ? JSON.stringify({ url, token: body.token, expires: body.expires }) + '\n' : `${url}\n`)
}

/** The peer page URL with a join token in its fragment (never sent to a server by the browser). */
export function joinUrl (page: string, token: string): string {
  return `${page}#join=${token}`
}
