import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { InvalidProviderError } from './errors.ts'
import type { Provider } from './types.ts'
import type { Libp2p } from '@libp2p/interface'
import type { LayerRange, Member } from '@shardmesh/mesh'
import type { ModelConfig } from '@shardmesh/model'

/**
 * Whether a peer announcing `ranges` holds a part: layer `l` if a range covers it; the
 * embedding with a range that starts at 0 (or, tied, ends at the last layer); the head
 * with a range that ends at the last layer — what `partsForStage` fetches for the range.
 */
export function holdsPart (ranges: readonly LayerRange[], part: string, config: Pick<ModelConfig, 'nLayers' | 'tiedEmbeddings'>): boolean {
  const n = config.nLayers
  if (part === 'embedding') return ranges.some(([a, b]) => a === 0 || (config.tiedEmbeddings && b === n))
  if (part === 'head') return ranges.some(([, b]) => b === n)
  const l = Number(part.slice(6))
  return ranges.some(([a, b]) => a <= l && l < b)
}

/**
 * Members that announce holding `part` (`any`: holding anything, e.g. for the manifest and
 * tokenizer, which every holder fetched first), alive ones only, without `self`. Peers come
 * before bootstrap nodes; `rotate` turns the peers' order so consecutive parts go to
 * different holders.
 */
export function meshProviders (members: readonly Member[], part: string | 'any', config: Pick<ModelConfig, 'nLayers' | 'tiedEmbeddings'> | null, self: string, rotate = 0): Provider[] {
  const holders = members.filter(m => m.status === 'alive' && m.peerId !== self && m.layers.length > 0 &&
    (part === 'any' || config === null || holdsPart(m.layers, part, config)))
  const peers = holders.filter(m => m.role !== 'bootstrap').sort((a, b) => a.peerId < b.peerId ? -1 : 1)
  const r = peers.length === 0 ? 0 : rotate % peers.length
  const ordered = [...peers.slice(r), ...peers.slice(0, r), ...holders.filter(m => m.role === 'bootstrap')]
  return ordered.map(m => ({ peerId: m.peerId, addrs: m.addrs, role: m.role }))
}

/** A provider from a peer id or a multiaddr ending in `/p2p/<peer id>`. */
export function parseProvider (text: string): Provider {
  if (text.startsWith('/')) {
    let peerId: string | undefined
    try {
      peerId = multiaddr(text).getComponents().filter(c => c.name === 'p2p').pop()?.value
    } catch (err) {
      throw new InvalidProviderError(`provider "${text}" is not a multiaddr: ${(err as Error).message}`)
    }
    if (peerId === undefined) throw new InvalidProviderError(`provider "${text}" does not end in /p2p/<peer id>`)
    return { peerId, addrs: [text] }
  }
  try {
    peerIdFromString(text)
  } catch (err) {
    throw new InvalidProviderError(`provider "${text}" is neither a peer id nor a multiaddr: ${(err as Error).message}`)
  }
  return { peerId: text, addrs: [] }
}

/** Explicit providers first (in the given order), then the others, each peer once. */
export function mergeProviders (...lists: Provider[][]): Provider[] {
  const seen = new Map<string, Provider>()
  for (const p of lists.flat()) {
    const known = seen.get(p.peerId)
    if (known === undefined) seen.set(p.peerId, { ...p, addrs: [...p.addrs] })
    else for (const a of p.addrs) if (!known.addrs.includes(a)) known.addrs.push(a)
  }
  return [...seen.values()]
}

/** Make sure the node has a connection to `provider` (bitswap only talks to connected peers). */
export async function connect (libp2p: Libp2p, provider: Provider, signal: AbortSignal): Promise<void> {
  const peerId = peerIdFromString(provider.peerId)
  if (libp2p.getConnections(peerId).length > 0) return
  const addrs = provider.addrs.map(a => multiaddr(a.includes('/p2p/') ? a : `${a}/p2p/${provider.peerId}`))
  await libp2p.dial(addrs.length > 0 ? addrs : peerId, { signal })
}
