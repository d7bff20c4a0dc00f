// The page's access to the node's API: the API key (when the node has keys) and the live feed.
// EventSource cannot send an Authorization header, so the feed is read with fetch: the same
// server-sent events, parsed here.
import type { Snapshot } from './types.ts'

const KEY_ITEM = 'shardmesh-dashboard-key'

/** Thrown when the node wants a key the page does not have (or a wrong one). */
export class KeyRequiredError extends Error {
  override name = 'KeyRequiredError'
}

/**
 * The API key: `#key=KEY` in the page's URL (taken out of the address bar at once, and kept
 * for this tab's session), else what the tab was given before.
 */
export function apiKey (): string | undefined {
  const m = /(?:^#|&)key=([^&]+)/.exec(location.hash)
  if (m !== null) {
    sessionStorage.setItem(KEY_ITEM, decodeURIComponent(m[1]))
    history.replaceState(null, '', location.pathname + location.search)
  }
  return sessionStorage.getItem(KEY_ITEM) ?? undefined
}

export function setApiKey (key: string): void { sessionStorage.setItem(KEY_ITEM, key) }

/** `/api/...` of the node serving this page (relative: the page lives at `<prefix>/dashboard/`). */
export const apiUrl = (path: string): string => new URL(`../api/${path}`, location.href).toString()

export async function api (path: string, signal?: AbortSignal): Promise<Response> {
  const key = apiKey()
  const res = await fetch(apiUrl(path), { headers: key === undefined ? {} : { authorization: `Bearer ${key}` }, signal, cache: 'no-store' })
  if (res.status === 401) throw new KeyRequiredError(((await res.json().catch(() => ({}))) as { error?: { message?: string } }).error?.message ?? 'an API key is needed')
  return res
}

/**
 * Read `/api/events` until `signal` aborts, calling `onSnapshot` with each snapshot; reconnects
 * after the server's `retry` when the stream ends or fails (`onState` says which).
 */
export async function follow (onSnapshot: (s: Snapshot) => void, onState: (state: 'live' | 'reconnecting' | 'key', detail?: string) => void, signal: AbortSignal): Promise<void> {
  let retryMs = 1000
  while (!signal.aborted) {
    try {
      const res = await api('events', signal)
      if (!res.ok || res.body === null) throw new Error(`GET /api/events: ${res.status}`)
      onState('live')
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
      let buffer = ''
      for (;;) {
        const { value, done } = await reader.read()
        if (done) break
        buffer += value
        let end: number
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          let event = 'message'
          let data = ''
          for (const line of block.split('\n')) {
            if (line.startsWith('event:')) event = line.slice(6).trim()
            else if (line.startsWith('data:')) data += line.slice(5).trimStart()
            else if (line.startsWith('retry:')) retryMs = Number(line.slice(6)) || retryMs
          }
          if (event === 'snapshot' && data !== '') onSnapshot(JSON.parse(data) as Snapshot)
        }
      }
      onState('reconnecting', 'the stream ended')
    } catch (err) {
      if (signal.aborted) return
      if (err instanceof KeyRequiredError) { onState('key', err.message); return }
      onState('reconnecting', (err as Error).message)
    }
    await new Promise(resolve => setTimeout(resolve, retryMs))
  }
}
