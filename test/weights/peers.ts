// Helpers of the weights suites: real mesh peers (libp2p + the mesh service) with a weights
// node on each, a lying blockstore, and the reference tokens from an original checkpoint.
import { afterEach } from 'vitest'
import { join } from 'node:path'
import { MemoryBlockstore } from 'blockstore-core'
import { cpuBackend, generate } from '@shardmesh/engine'
import type { SamplingParams } from '@shardmesh/engine'
import { createMeshPeer } from '@shardmesh/mesh'
import type { MeshNode } from '@shardmesh/mesh'
import { createTokenizer, quantizeCheckpoint, syntheticModel, SYNTHETIC_PRESETS } from '@shardmesh/model'
import type { Checkpoint, ModelConfig, SyntheticModelInit, Tensor, TokenizerSpec } from '@shardmesh/model'
import { loadModel } from '@shardmesh/model/node'
import { weightsNode } from '@shardmesh/weights'
import type { WeightsNode } from '@shardmesh/weights'
import type { CID } from 'multiformats/cid'
import { storiesDir } from '../fixtures.ts'

/** Which model a suite (or a provider process) uses. */
export type ModelSpec =
  | { kind: 'stories260K' }
  | ({ kind: 'synthetic', preset?: keyof typeof SYNTHETIC_PRESETS, quant?: 'Q8_0' | 'Q4_0' | 'F16' } & Omit<SyntheticModelInit, 'name'>)

export async function loadSpec (spec: ModelSpec): Promise<Checkpoint> {
  if (spec.kind === 'stories260K') {
    return await loadModel(join(storiesDir(), 'stories260K.bin'), { tokenizerPath: join(storiesDir(), 'tok512.bin') })
  }
  const { preset, quant, kind: _, ...overrides } = spec
  const model = syntheticModel({ ...(preset !== undefined ? SYNTHETIC_PRESETS[preset] : {}), ...overrides })
  return quant !== undefined ? quantizeCheckpoint(model, quant) : model
}

export interface WeightsPeer {
  node: MeshNode
  weights: WeightsNode
  id: string
  /** A TCP multiaddr ending in /p2p/<id>. */
  addr: string
  stop: () => Promise<void>
}

/** A mesh peer on 127.0.0.1 with a weights node on its libp2p node. */
export async function startPeer (init: { bootstrap?: string[], role?: 'peer' | 'bootstrap', blockstore?: MemoryBlockstore, listen?: string[], relayServer?: boolean, partConcurrency?: number, blockConcurrency?: number } = {}): Promise<WeightsPeer> {
  const node = await createMeshPeer({ role: init.role ?? 'peer', bootstrap: init.bootstrap ?? [], listen: init.listen ?? ['/ip4/127.0.0.1/tcp/0'], relayServer: init.relayServer })
  const weights = weightsNode({ libp2p: node, blockstore: init.blockstore, partConcurrency: init.partConcurrency, blockConcurrency: init.blockConcurrency })
  try {
    await weights.start()
  } catch (err) {
    await node.stop()
    throw err
  }
  let stopped = false
  return {
    node,
    weights,
    id: node.peerId.toString(),
    addr: node.getMultiaddrs().map(String).find(a => a.includes('/tcp/'))!,
    stop: async () => {
      if (stopped) return
      stopped = true
      try { await weights.stop() } finally { await node.stop() }
    }
  }
}

/** Byte equality without vitest's element-by-element diff (slow on megabytes). */
/**
 * A `peer(init)` that starts a weights peer and stops every peer it started after each test
 * (call at the top level of a test file).
 */
export function peersStoppedAfterEach (): (init?: Parameters<typeof startPeer>[0]) => Promise<WeightsPeer> {
  const peers: WeightsPeer[] = []
  afterEach(async () => { await Promise.allSettled(peers.splice(0).map(async p => { await p.stop() })) })
  return async (init = {}) => {
    const p = await startPeer(init)
    peers.push(p)
    return p
  }
}

export function sameBytes (a: Uint8Array | undefined, b: Uint8Array): boolean {
  return a !== undefined && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength))
}

/** Poll `fn` every 50 ms until it returns something truthy; fail naming `what` after `timeoutMs`. */
export async function waitFor<T> (what: string, fn: () => T | undefined | null | false, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const v = fn()
    if (v !== undefined && v !== null && v !== false) return v
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

/** Wait until `peer` sees `holder` alive in the membership, announcing layers. */
export async function waitForHolder (peer: WeightsPeer, holder: string): Promise<void> {
  await waitFor(`${peer.id} to see ${holder} announce layers`, () =>
    peer.node.services.mesh.members().find(m => m.peerId === holder && m.status === 'alive' && m.layers.length > 0))
}

export interface StageSource { config: ModelConfig, layers: [number, number], tensors: Pick<Map<string, Tensor>, 'get'> }

/** Tokens of a generation through stages chained in this process (CPU backend). */
export async function tokensOf (stages: StageSource[], tokenizer: TokenizerSpec, prompt: string, sampling: SamplingParams = {}, maxTokens = 30): Promise<number[]> {
  const backend = cpuBackend({ threads: 1 })
  const built = await Promise.all(stages.map(async s => await backend.createStage({ config: s.config, layers: s.layers, tensors: s.tensors })))
  try {
    const result = await generate({
      sessions: built.map(s => s.createSession()),
      promptTokens: createTokenizer(tokenizer).encode(prompt),
      maxTokens,
      contextLength: stages[0].config.contextLength,
      sampling
    })
    return result.tokens
  } finally {
    await Promise.all(built.map(async s => { await s.close() }))
  }
}

/**
 * A peer that lies: it holds the real blocks, but every raw leaf it reads (for itself or to
 * serve over bitswap) comes out with its first byte flipped.
 */
export class LyingBlockstore extends MemoryBlockstore {
  lies = 0
  async * get (cid: CID, options?: Parameters<MemoryBlockstore['get']>[1]): AsyncGenerator<Uint8Array> {
    const chunks: Uint8Array[] = []
    for await (const c of super.get(cid, options)) chunks.push(c)
    const bytes = new Uint8Array(chunks.reduce((a, c) => a + c.byteLength, 0))
    let off = 0
    for (const c of chunks) { bytes.set(c, off); off += c.byteLength }
    if (cid.code === 0x55) { // raw leaf
      bytes[0] ^= 0xff
      this.lies++
    }
    yield bytes
  }
}
