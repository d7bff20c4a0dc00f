import { MAX_BYTES_IN_FLIGHT, MAX_MESSAGES_PER_SECOND, MESSAGE_BURST, REFUSAL_REPLIES_PER_SECOND, REFUSAL_REPLY_BURST } from './constants.ts'

export interface PeerLimitsInit {
  /** Stage messages (frames and control messages) one remote peer may send per second, sustained. @default MAX_MESSAGES_PER_SECOND */
  messagesPerSecond?: number
  /** Messages one remote peer may send at once above that rate (a replayed output log comes in one burst). @default MESSAGE_BURST */
  messageBurst?: number
  /** Bytes of frames from one remote peer received and not yet computed. @default MAX_BYTES_IN_FLIGHT */
  maxBytesInFlight?: number
  /** Refusals answered per second that one remote peer's messages caused (the others are only counted). @default REFUSAL_REPLIES_PER_SECOND */
  refusalRepliesPerSecond?: number
  /** @default REFUSAL_REPLY_BURST */
  refusalReplyBurst?: number
}

/** A token bucket: `burst` tokens, refilled at `rate` per second. */
class Bucket {
  private readonly rate: number
  private readonly burst: number
  private tokens: number
  private at: number
  constructor (rate: number, burst: number, now: number) {
    this.rate = rate
    this.burst = burst
    this.tokens = burst
    this.at = now
  }

  private refill (now: number): void {
    this.tokens = Math.min(this.burst, this.tokens + (now - this.at) * this.rate / 1000)
    this.at = now
  }

  take (now: number): boolean {
    this.refill(now)
    if (this.tokens < 1) return false
    this.tokens--
    return true
  }

  full (now: number): boolean {
    this.refill(now)
    return this.tokens >= this.burst
  }
}

interface PeerState { messages: Bucket, replies: Bucket, bytes: number }

/**
 * What each remote peer may cost a stage server: a message rate (token bucket), bytes of frames
 * waiting to be computed, and a rate of refusals answered (so a flood of bad opens naming some
 * other peer as head does not turn this server into an amplifier). One entry per peer with
 * something in flight or a bucket not yet refilled; `sweep()` forgets the others.
 */
export class PeerLimits {
  private readonly peers = new Map<string, PeerState>()
  private readonly rate: number
  private readonly burst: number
  private readonly maxBytes: number
  private readonly replyRate: number
  private readonly replyBurst: number

  constructor (init: PeerLimitsInit = {}) {
    this.rate = init.messagesPerSecond ?? MAX_MESSAGES_PER_SECOND
    this.burst = init.messageBurst ?? MESSAGE_BURST
    this.maxBytes = init.maxBytesInFlight ?? MAX_BYTES_IN_FLIGHT
    this.replyRate = init.refusalRepliesPerSecond ?? REFUSAL_REPLIES_PER_SECOND
    this.replyBurst = init.refusalReplyBurst ?? REFUSAL_REPLY_BURST
  }

  get limits (): { messagesPerSecond: number, messageBurst: number, maxBytesInFlight: number } {
    return { messagesPerSecond: this.rate, messageBurst: this.burst, maxBytesInFlight: this.maxBytes }
  }

  private state (peer: string, now: number): PeerState {
    let s = this.peers.get(peer)
    if (s === undefined) {
      s = { messages: new Bucket(this.rate, this.burst, now), replies: new Bucket(this.replyRate, this.replyBurst, now), bytes: 0 }
      this.peers.set(peer, s)
    }
    return s
  }

  /** One message from `peer`: false when it is over its rate. */
  admit (peer: string, now = performance.now()): boolean {
    return this.state(peer, now).messages.take(now)
  }

  /** Hold `bytes` of a frame from `peer` until `release`: false (nothing held) when it would pass the bound. */
  reserve (peer: string, bytes: number, now = performance.now()): boolean {
    const s = this.state(peer, now)
    if (s.bytes + bytes > this.maxBytes) return false
    s.bytes += bytes
    return true
  }

  release (peer: string, bytes: number): void {
    const s = this.peers.get(peer)
    if (s !== undefined) s.bytes = Math.max(0, s.bytes - bytes)
  }

  /** May a refusal caused by `peer` be answered? */
  mayReply (peer: string, now = performance.now()): boolean {
    return this.state(peer, now).replies.take(now)
  }

  bytesInFlight (peer?: string): number {
    if (peer !== undefined) return this.peers.get(peer)?.bytes ?? 0
    let n = 0
    for (const s of this.peers.values()) n += s.bytes
    return n
  }

  /** Peers tracked now. */
  get size (): number { return this.peers.size }

  /** Forget peers with nothing in flight and full buckets (they would start from the same state). */
  sweep (now = performance.now()): void {
    for (const [peer, s] of this.peers) {
      if (s.bytes === 0 && s.messages.full(now) && s.replies.full(now)) this.peers.delete(peer)
    }
  }
}
