// Bulk throughput probe for benchmarks, `/shardmesh/bulk/1.0.0`: the dialer streams `frames`
// frames of `frameBytes` back to back and closes its writing side; the listener counts the
// bytes and answers with the count (decimal text). The same code runs in a tab and in Node,
// so tab↔tab over WebRTC and Node↔Node over TCP are measured alike.
import type { MeshNode } from '@shardmesh/mesh'

export const BULK_PROTOCOL = '/shardmesh/bulk/1.0.0'
/** A listener aborts a probe stream past this many bytes. */
export const MAX_BULK_BYTES = 1024 * 1024 * 1024

type Stream = Parameters<Parameters<MeshNode['handle']>[1]>[0]
type Connection = ReturnType<MeshNode['getConnections']>[number]

export interface BulkRun { bytes: number, ms: number }

/** Answer probes: count each stream's bytes, reply with the count when the dialer is done writing. */
export async function handleBulk (node: Pick<MeshNode, 'handle'>): Promise<void> {
  await node.handle(BULK_PROTOCOL, (stream: Stream) => {
    let received = 0
    stream.addEventListener('message', evt => {
      received += evt.data.byteLength
      if (received > MAX_BULK_BYTES) stream.abort(new Error(`bulk probe over ${MAX_BULK_BYTES} bytes`))
    })
    stream.addEventListener('remoteCloseWrite', () => {
      stream.send(new TextEncoder().encode(String(received)))
      stream.close().catch(err => { stream.abort(err as Error) })
    })
  }, { maxInboundStreams: 2 })
}

/** Stream `frames` × `frameBytes` over `connection`; the time runs until the listener confirmed every byte. */
export async function sendBulk (connection: Pick<Connection, 'newStream'>, frameBytes: number, frames: number, signal: AbortSignal = AbortSignal.timeout(60_000)): Promise<BulkRun> {
  const stream = await connection.newStream(BULK_PROTOCOL, { signal })
  const reply = new Promise<number>((resolve, reject) => {
    let text = ''
    const decoder = new TextDecoder()
    stream.addEventListener('message', evt => { text += decoder.decode(evt.data.subarray(), { stream: true }) })
    stream.addEventListener('remoteCloseWrite', () => { resolve(Number(text)) })
    stream.addEventListener('close', evt => { if (evt.error != null) reject(evt.error) })
    signal.addEventListener('abort', () => { reject(signal.reason) })
  })
  const frame = new Uint8Array(frameBytes).fill(7)
  const start = performance.now()
  try {
    for (let i = 0; i < frames; i++) {
      if (!stream.send(frame)) await stream.onDrain({ signal })
    }
    await stream.close({ signal })
    const bytes = await reply
    const ms = performance.now() - start
    if (bytes !== frameBytes * frames) throw new Error(`the listener counted ${bytes} bytes of ${frameBytes * frames}`)
    return { bytes, ms }
  } catch (err) {
    stream.abort(err as Error)
    throw err
  }
}
