// The tab as a mesh peer: the browser libp2p factory (WebSockets to the bootstrap, circuit
// relay for signalling, direct WebRTC to other peers), Helia weights cached in IndexedDB, and
// the pipeline (`pipelineNode`) serving the stage the coordinator plans for this tab, computed
// by `backend`. This tab is also a head: its chat box drives sessions along the plan.
import type { Backend } from '@shardmesh/engine'
import { createMeshPeer } from '@shardmesh/mesh'
import type { Capabilities, MeshNode, MeshPeerInit } from '@shardmesh/mesh'
import { pipelineNode } from '@shardmesh/pipeline'
import type { PipelineService } from '@shardmesh/pipeline'
import { weightsNode } from '@shardmesh/weights'
import type { FetchProgressEvents, ModelManifest, WeightsNode } from '@shardmesh/weights'

/** IndexedDB database of the tab's block cache (a reload serves its layers from it). */
export const BLOCK_CACHE = 'shardmesh-blocks'

export interface BrowserPeerInit {
  bootstrap: string[]
  /** @default a new key */
  privateKey?: MeshPeerInit['privateKey']
  capabilities: Capabilities
  backend: Backend
  /** Local and test deployments: dial ws:// and private addresses. */
  allowLocalDial: boolean
  /** @default the default mesh */
  meshId?: string
  /** A private mesh's admission ticket for this peer (join.ts). */
  ticket?: string
  /** Every weights fetch progress event (the page's progress bar). */
  onFetchProgress?: (evt: FetchProgressEvents) => void
  onError?: (err: Error) => void
}

export interface BrowserPeer {
  node: MeshNode
  weights: WeightsNode
  pipeline: PipelineService<ModelManifest>
  /** Clean hand-off: stop serving, leave the mesh (the others see the relay and WebRTC connections close). */
  leave: () => Promise<void>
}

export async function startBrowserPeer (init: BrowserPeerInit): Promise<BrowserPeer> {
  const node = await createMeshPeer({ privateKey: init.privateKey, bootstrap: init.bootstrap, allowLocalDial: init.allowLocalDial, meshId: init.meshId, capabilities: init.capabilities, ticket: init.ticket })
  const weights = weightsNode({ libp2p: node, cache: BLOCK_CACHE })
  let pipeline: PipelineService<ModelManifest> | undefined
  try {
    await weights.start()
    const progress = init.onFetchProgress
    pipeline = await pipelineNode<ModelManifest>({
      node,
      weights: {
        openManifest: async (cid, options) => await weights.openManifest(cid, options),
        fetchStage: async (manifest, layers, options) => await weights.fetchStage(manifest, layers, { ...options, onProgress: progress }),
        fetchTokenizer: async (manifest, options) => await weights.fetchTokenizer(manifest, options),
        announce: async (manifest, options) => await weights.announce(manifest, options)
      },
      backend: init.backend,
      head: true,
      onError: init.onError
    })
  } catch (err) {
    await weights.stop().catch(() => {})
    await node.stop()
    throw err
  }
  const service = pipeline
  return {
    node,
    weights,
    pipeline: service,
    leave: async () => {
      await service.stop()
      await weights.stop()
      await node.stop()
    }
  }
}
