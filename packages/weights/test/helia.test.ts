import { createMeshPeer } from '@shardmesh/mesh'
import type { MeshNode } from '@shardmesh/mesh'
import { afterEach, describe, expect, it } from 'vitest'
import { weightsNode } from '../src/index.ts'

const BITSWAP = '/ipfs/bitswap/1.2.0'
let node: MeshNode | undefined
afterEach(async () => { await node?.stop(); node = undefined })

describe('Helia on the mesh\'s libp2p node', () => {
  it('serves bitswap on that node, with its identity, and leaves it running when stopped', async () => {
    node = await createMeshPeer()
    const before = node.getProtocols().length
    const weights = weightsNode({ libp2p: node })
    await weights.start()
    expect(node.getProtocols()).toContain(BITSWAP)
    expect(node.getProtocols()).toHaveLength(before + 1) // one node: nothing else was registered or created
    await weights.stop()
    expect(node.status).toBe('started')
    expect(node.getProtocols()).not.toContain(BITSWAP)
    const again = weightsNode({ libp2p: node }) // a later start on the same node works
    await again.start()
    expect(node.getProtocols()).toContain(BITSWAP)
    await again.stop()
  })
})
