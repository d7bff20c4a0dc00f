import { lpStream } from '@libp2p/utils'
import { DEFAULT_MAX_FRAME_BYTES, InvalidControlMessageError, InvalidFrameError, decodeControl, decodeFrame, isControlMessage } from '@shardmesh/protocol'
import type { Connection, Libp2p, Stream } from '@libp2p/interface'
import type { ControlMessage, Frame, PeerRef } from '@shardmesh/protocol'
import type { LengthPrefixedStream } from '@libp2p/utils'
import { DIAL_TIMEOUT_MS, MAX_INBOUND_STREAMS, STAGE_PROTOCOL } from './constants.ts'
import { NotStartedError, StageUnreachableError } from './errors.ts'
import { dialTarget } from './dial.ts'

/** The narrow part of a libp2p node the pipeline needs. */
export type PipelineNode = Pick<Libp2p, 'peerId' | 'handle' | 'unhandle' | 'dialProtocol' | 'getMultiaddrs' | 'addEventListener' | 'removeEventListener'>

/** A decoded message and the peer it came from (the remote end of the libp2p connection). */
export type Inbound = { from: string, frame: Frame } | { from: string, control: ControlMessage }

export interface EndpointInit {
  /** Largest message accepted on a stream. @default DEFAULT_MAX_FRAME_BYTES */
  maxFrameBytes?: number
}

interface Link { lp: LengthPrefixedStream<Stream>, stream: Stream, tail: Promise<void> }

/**
 * One per node: serves the stage protocol, decodes what arrives (refusing and counting
 * anything malformed without closing the stream), and keeps one outbound stream per peer
 * with writes in order.
 */
export class Endpoint {
  readonly node: PipelineNode
  private readonly maxFrameBytes: number
  private readonly listeners = new Set<(msg: Inbound) => void>()
  private readonly links = new Map<string, Promise<Link>>()
  private readonly inbound = new Set<Stream>()
  private readonly counts: Record<string, number> = {}
  private started = false
  private readonly lostListeners = new Set<(peerId: string, at: number) => void>()
  private readonly onDisconnect = (evt: CustomEvent<{ toString: () => string }>): void => {
    const peer = evt.detail.toString()
    const at = performance.now()
    // the outbound stream died with the connection: the next send dials again
    this.links.delete(peer)
    for (const fn of this.lostListeners) {
      try { fn(peer, at) } catch {}
    }
  }
  /** Messages this peer sends itself, delivered in order. */
  private loopback: Promise<void> = Promise.resolve()

  constructor (node: PipelineNode, init: EndpointInit = {}) {
    this.node = node
    this.maxFrameBytes = init.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES
  }

  get peerId (): string { return this.node.peerId.toString() }

  /** This peer as a route entry: its id and dialable addresses. */
  self (): PeerRef {
    return { peerId: this.peerId, addrs: this.node.getMultiaddrs().map(String) }
  }

  async start (): Promise<void> {
    if (this.started) return
    await this.node.handle(STAGE_PROTOCOL, (stream: Stream, connection: Connection) => { void this.serve(stream, connection.remotePeer.toString()) }, { maxInboundStreams: MAX_INBOUND_STREAMS })
    this.node.addEventListener('peer:disconnect', this.onDisconnect)
    this.started = true
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    this.node.removeEventListener('peer:disconnect', this.onDisconnect)
    await this.node.unhandle(STAGE_PROTOCOL).catch(() => {})
    const links = [...this.links.values()]
    this.links.clear()
    await Promise.all(links.map(async l => { await l.then(async x => { await x.tail; await x.stream.close({ signal: AbortSignal.timeout(2000) }) }).catch(() => {}) }))
    for (const s of this.inbound) s.abort(new Error('endpoint stopped'))
    this.inbound.clear()
  }

  onMessage (fn: (msg: Inbound) => void): () => void {
    this.listeners.add(fn)
    return () => { this.listeners.delete(fn) }
  }

  /** Called when every connection to a peer closed (with the local time it was seen). */
  onPeerLost (fn: (peerId: string, at: number) => void): () => void {
    this.lostListeners.add(fn)
    return () => { this.lostListeners.delete(fn) }
  }

  /** Refused messages by reason (frame error codes, `CONTROL`, `STREAM`, and what listeners report). */
  rejections (): Record<string, number> { return { ...this.counts } }

  reject (reason: string): void { this.counts[reason] = (this.counts[reason] ?? 0) + 1 }

  /** Messages and their bytes written to other peers' streams (not counting loopback, nor framing). */
  readonly sent = { messages: 0, bytes: 0 }

  /** Queue `bytes` on the stream to `to` (dialed on first use); resolves once written. */
  async send (to: PeerRef, bytes: Uint8Array, options: { signal?: AbortSignal } = {}): Promise<void> {
    if (!this.started) throw new NotStartedError('the pipeline endpoint is not started')
    if (to.peerId === this.peerId) {
      // this peer is also on the route (a head serving a stage): deliver in order, without a dial
      const copy = bytes.slice()
      this.loopback = this.loopback.then(() => { this.dispatch(copy, this.peerId) })
      await this.loopback
      return
    }
    let pending = this.links.get(to.peerId)
    if (pending === undefined) {
      pending = this.dial(to, options.signal)
      this.links.set(to.peerId, pending)
      pending.catch(() => { if (this.links.get(to.peerId) === pending) this.links.delete(to.peerId) })
    }
    const link = await pending
    const write = link.tail.then(async () => {
      await link.lp.write(bytes, { signal: options.signal })
      this.sent.messages++
      this.sent.bytes += bytes.byteLength
    })
    link.tail = write.catch(() => {})
    try {
      await write
    } catch (err) {
      if (this.links.get(to.peerId) === pending) this.links.delete(to.peerId)
      link.stream.abort(err as Error)
      throw new StageUnreachableError(`stream to ${to.peerId} failed: ${(err as Error).message}`, to.peerId)
    }
  }

  private async dial (to: PeerRef, signal?: AbortSignal): Promise<Link> {
    const sig = signal === undefined ? AbortSignal.timeout(DIAL_TIMEOUT_MS) : AbortSignal.any([signal, AbortSignal.timeout(DIAL_TIMEOUT_MS)])
    try {
      const target = dialTarget(to.peerId, to.addrs)
      const stream = await this.node.dialProtocol(target, STAGE_PROTOCOL, { signal: sig })
      return { stream, lp: lpStream(stream, { maxDataLength: this.maxFrameBytes }), tail: Promise.resolve() }
    } catch (err) {
      throw new StageUnreachableError(`cannot open ${STAGE_PROTOCOL} to ${to.peerId}: ${(err as Error).message}`, to.peerId)
    }
  }

  private async serve (stream: Stream, from: string): Promise<void> {
    this.inbound.add(stream)
    const lp = lpStream(stream, { maxDataLength: this.maxFrameBytes })
    try {
      while (this.started) {
        let bytes: Uint8Array
        try {
          // a copy: the bytes under a read may be reused by the transport once we yield
          bytes = (await lp.read()).slice()
        } catch (err) {
          // end of stream, or a length prefix over the limit: the stream cannot be resynced
          if ((err as Error).name !== 'UnexpectedEOFError') { this.reject('STREAM'); stream.abort(err as Error) }
          return
        }
        this.dispatch(bytes, from)
      }
    } finally {
      this.inbound.delete(stream)
    }
  }

  private dispatch (bytes: Uint8Array, from: string): void {
    let msg: Inbound
    try {
      msg = isControlMessage(bytes) ? { from, control: decodeControl(bytes) } : { from, frame: decodeFrame(bytes, { maxBytes: this.maxFrameBytes }) }
    } catch (err) {
      if (err instanceof InvalidFrameError) this.reject(err.code)
      else if (err instanceof InvalidControlMessageError) this.reject('CONTROL')
      else this.reject('UNKNOWN')
      return
    }
    for (const fn of this.listeners) {
      try { fn(msg) } catch { this.reject('LISTENER') }
    }
  }
}
