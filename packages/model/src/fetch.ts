import { createHash, randomBytes } from 'node:crypto'
import { mkdir, open, rename, rm, stat } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { DownloadError } from './errors.ts'

/** Reported after every chunk of a download. */
export interface FetchProgress {
  url: string
  receivedBytes: number
  /** From Content-Length, when the server sends one for an unencoded body. */
  totalBytes?: number
}

export interface FetchModelOptions {
  /** Where downloads are kept. @default $SHARDMESH_CACHE or ~/.cache/shardmesh/models */
  cacheDir?: string
  signal?: AbortSignal
  onProgress?: (e: FetchProgress) => void
}

/** Shortest interval between two redraws of a progress bar. */
const REDRAW_MS = 100

/**
 * Downloads an http(s) URL into the cache once and returns the local path
 * (`<sha256(url) prefix>-<file name>`); later calls return the cached file without network.
 * The body goes to a temporary file renamed into place only when complete, so a failed,
 * truncated or aborted download throws DownloadError and leaves nothing in the cache.
 */
export async function fetchModel (url: string, opts: FetchModelOptions = {}): Promise<string> {
  const parsed = URL.parse(url)
  if (parsed === null || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
    throw new DownloadError(`${url}: not an http(s) URL`)
  }
  const cacheDir = opts.cacheDir ?? defaultCacheDir()
  const target = join(cacheDir, cacheName(parsed))
  if (await stat(target).then((s) => s.isFile(), () => false)) return target

  await mkdir(cacheDir, { recursive: true })
  const temp = `${target}.${process.pid}-${randomBytes(4).toString('hex')}.part`
  try {
    await download(url, temp, opts)
    await rename(temp, target)
    return target
  } finally {
    await rm(temp, { force: true })
  }
}

/** Streams `url` into `path`, checking the status and, when known, the length. */
async function download (url: string, path: string, { signal, onProgress }: FetchModelOptions): Promise<void> {
  const fail = (status: string, why: string, cause?: unknown): DownloadError =>
    new DownloadError(`download of ${url} failed (${status}): ${signal?.aborted === true ? 'aborted' : why}`, { cause })

  let res: Response
  try {
    // identity encoding: the bytes counted are then the bytes Content-Length promises
    res = await fetch(url, { signal, headers: { 'accept-encoding': 'identity' } })
  } catch (err) {
    throw fail('no response', (err as Error).message, err)
  }
  const status = `HTTP ${res.status}`
  if (!res.ok || res.body === null) {
    await res.body?.cancel()
    throw fail(status, res.statusText || 'no body')
  }
  const encoding = res.headers.get('content-encoding')
  const length = res.headers.get('content-length')
  const totalBytes = length !== null && (encoding === null || encoding === 'identity') ? Number(length) : undefined

  const reader = res.body.getReader()
  const file = await open(path, 'w')
  let receivedBytes = 0
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      for (let offset = 0; offset < value.byteLength;) offset += (await file.write(value, offset)).bytesWritten
      receivedBytes += value.byteLength
      onProgress?.({ url, receivedBytes, totalBytes })
    }
  } catch (err) {
    throw fail(status, `body broke off after ${receivedBytes} bytes: ${(err as Error).message}`, err)
  } finally {
    reader.releaseLock()
    await file.close()
  }
  if (totalBytes !== undefined && receivedBytes !== totalBytes) {
    throw fail(status, `got ${receivedBytes} of ${totalBytes} bytes`)
  }
}

function defaultCacheDir (): string {
  return process.env.SHARDMESH_CACHE || join(homedir(), '.cache', 'shardmesh', 'models')
}

/** `<first 16 hex of sha256(url)>-<last path segment, made file-name safe>`. */
function cacheName (url: URL): string {
  const hash = createHash('sha256').update(url.href).digest('hex').slice(0, 16)
  const last = decodeURIComponent(url.pathname.split('/').pop() ?? '').replace(/[^\w.-]/g, '_')
  return `${hash}-${last === '' || /^\.+$/.test(last) ? 'model' : last}`
}

/**
 * An onProgress callback drawing one self-overwriting line (bar, percent, MB, MB/s) on
 * a terminal, redrawn at most every REDRAW_MS; it ends the line when the download is
 * complete. On anything that is not a TTY it prints nothing.
 */
export function progressBar (stream: Pick<NodeJS.WriteStream, 'isTTY' | 'columns' | 'write'>): (e: FetchProgress) => void {
  if (stream.isTTY !== true) return () => {}
  const start = performance.now()
  let lastDraw = -Infinity
  const mb = (bytes: number): string => (bytes / 1e6).toFixed(1)
  return ({ receivedBytes, totalBytes }) => {
    const now = performance.now()
    const done = totalBytes !== undefined && receivedBytes >= totalBytes
    if (!done && now - lastDraw < REDRAW_MS) return
    lastDraw = now
    const rate = `${mb(receivedBytes / Math.max((now - start) / 1000, 1e-3))} MB/s`
    let line = `${mb(receivedBytes)} MB ${rate}`
    if (totalBytes !== undefined && totalBytes > 0) {
      const fraction = Math.min(1, receivedBytes / totalBytes)
      const info = ` ${(fraction * 100).toFixed(0).padStart(3)}% ${mb(receivedBytes)}/${mb(totalBytes)} MB ${rate}`
      const width = Math.max(10, Math.min(40, (stream.columns ?? 80) - info.length - 3))
      const filled = Math.round(fraction * width)
      line = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]${info}`
    }
    stream.write(`\r\x1b[2K${line}${done ? '\n' : ''}`)
  }
}
