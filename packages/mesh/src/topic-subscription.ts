import { TopicValidatorResult } from '@libp2p/gossipsub'
import type { GossipSub, Message } from '@libp2p/gossipsub'

/** What `subscribeTopic` uses of gossipsub. */
export type TopicPubsub = Pick<GossipSub, 'subscribe' | 'unsubscribe' | 'topicValidators' | 'addEventListener' | 'removeEventListener'>

export interface TopicSubscriptionInit<T> {
  pubsub: TopicPubsub
  /** The full topic name (`topicName(meshId, 'metrics')`). */
  topic: string
  /**
   * Decode a payload; `from` is the signer gossipsub verified (StrictSign), never a field of
   * the payload. Throw to reject the message: gossipsub drops it, does not forward it and
   * lowers the sender's score.
   */
  decode: (data: Uint8Array, from: string) => T
  /** Each accepted message, once (duplicates are dropped by gossipsub before this). */
  onMessage: (value: T, from: string) => void
  /** Each rejected message: `err` is what `decode` threw, or 'unsigned'. */
  onReject?: (err: unknown, from: string | undefined) => void
}

/**
 * Subscribe to a topic outside the mesh service's own planes, validating each message with
 * `decode` before gossipsub accepts or forwards it (the mesh service does the same for its
 * planes). Returns the unsubscribe function.
 */
export function subscribeTopic<T> (init: TopicSubscriptionInit<T>): () => void {
  const { pubsub, topic } = init
  const decoded = new WeakMap<Message, T>()
  pubsub.topicValidators.set(topic, (_peer, msg) => {
    if (msg.type !== 'signed') {
      init.onReject?.('unsigned', undefined)
      return TopicValidatorResult.Reject
    }
    const from = msg.from.toString()
    try {
      decoded.set(msg, init.decode(msg.data, from))
      return TopicValidatorResult.Accept
    } catch (err) {
      init.onReject?.(err, from)
      return TopicValidatorResult.Reject
    }
  })
  const onMessage = (evt: CustomEvent<Message>): void => {
    const msg = evt.detail
    if (msg.topic !== topic || msg.type !== 'signed') return
    const value = decoded.get(msg)
    if (value !== undefined) init.onMessage(value, msg.from.toString())
  }
  pubsub.addEventListener('message', onMessage)
  pubsub.subscribe(topic)
  return () => {
    pubsub.removeEventListener('message', onMessage)
    pubsub.topicValidators.delete(topic)
    try { pubsub.unsubscribe(topic) } catch {} // gossipsub refuses once it is stopped: nothing to undo then
  }
}
