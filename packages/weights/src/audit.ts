import { base64 } from 'multiformats/bases/base64'
import { TamperedBlockError } from './errors.ts'
import type { ReceivedBlock } from './helia.ts'
import type { WeightsCounters } from './types.ts'
import type { CID } from 'multiformats/cid'

type Watcher = (err: TamperedBlockError) => void

const key = (cid: CID): string => base64.baseEncode(cid.multihash.bytes)

/**
 * Counts tampered blocks. Bitswap 1.2 sends a block with only its CID prefix; the receiver
 * hashes the bytes to learn which CID it is. A block whose bytes were altered therefore
 * hashes to a CID nobody asked for, and bitswap drops it without a word. The audit records
 * every CID our fetches request; a received block that matches none of them is counted
 * against its sender, the sender is distrusted, and attempts fetching from it are aborted
 * so they move to the next provider. (Late duplicates of honest blocks match a requested CID
 * and are not counted.)
 */
export class BlockAudit {
  private readonly requested = new Set<string>()
  private readonly watchers = new Map<string, Set<Watcher>>()
  private readonly received: EventTarget | undefined
  private readonly listener: (evt: Event) => void
  /** Peers that sent a tampered block. */
  readonly distrusted = new Set<string>()

  constructor (counters: WeightsCounters, received: EventTarget | undefined, onRejected: (provider: string, cid: string, bytes: number) => void) {
    this.listener = (evt: Event) => {
      const { sender, cid, block } = (evt as CustomEvent<ReceivedBlock>).detail
      if (this.requested.has(key(cid))) return
      const provider = sender.toString()
      counters.rejectedBlocks++
      counters.rejectedBytes += block.byteLength
      counters.rejectedByPeer[provider] = (counters.rejectedByPeer[provider] ?? 0) + 1
      if (!this.distrusted.has(provider)) {
        this.distrusted.add(provider)
        counters.distrusted.push(provider)
      }
      onRejected(provider, cid.toString(), block.byteLength)
      const err = new TamperedBlockError(`${provider} sent a ${block.byteLength}-byte block whose hash (${cid.toString()}) matches no requested block`)
      for (const w of this.watchers.get(provider) ?? []) w(err)
    }
    this.received = received
    received?.addEventListener('block', this.listener)
  }

  /** Record a CID before asking the network for it. */
  expect (cid: CID): void {
    this.requested.add(key(cid))
  }

  /** Call `fn` when `provider` sends a tampered block; returns the unsubscribe. */
  watch (provider: string, fn: Watcher): () => void {
    let set = this.watchers.get(provider)
    if (set === undefined) this.watchers.set(provider, set = new Set())
    set.add(fn)
    return () => {
      set.delete(fn)
      if (set.size === 0) this.watchers.delete(provider)
    }
  }

  close (): void {
    this.received?.removeEventListener('block', this.listener)
    this.watchers.clear()
  }
}
