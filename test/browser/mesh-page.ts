// A browser tab as a mesh peer (bundled by esbuild for browsers; `@shardmesh/mesh` resolves to
// the browser factory through its package.json "browser" field). The test drives it through
// `globalThis.shardmeshTab`.
import { createMeshPeer } from '@shardmesh/mesh'
import type { MeshNode } from '@shardmesh/mesh'

export interface TabConnection {
  remotePeer: string
  remoteAddr: string
  limited: boolean
  multiplexer: string | undefined
  status: string
}

export interface TabInfo {
  peerId: string
  runtime: { name: string, version: string }
  coordinator: string | null
  term: number
  role: string
  config: string[]
  connections: TabConnection[]
  members: Array<{ peerId: string, status: string, runtime: { name: string, version: string } }>
}

let node: MeshNode | undefined

const tab = {
  async start (bootstrap: string): Promise<string> {
    node = await createMeshPeer({
      bootstrap: [bootstrap],
      allowLocalDial: true
    })
    return node.peerId.toString()
  },
  info (): TabInfo {
    if (node === undefined) throw new Error('the tab has not started its peer')
    const mesh = node.services.mesh
    const c = mesh.coordinator()
    return {
      peerId: node.peerId.toString(),
      runtime: mesh.member(node.peerId.toString())?.capabilities.runtime ?? { name: 'unknown', version: '' },
      coordinator: c.peerId,
      term: c.term,
      role: c.role,
      config: [...mesh.state().config],
      connections: node.getConnections().map(conn => ({
        remotePeer: conn.remotePeer.toString(),
        remoteAddr: conn.remoteAddr.toString(),
        limited: conn.limits != null,
        multiplexer: conn.multiplexer,
        status: conn.status
      })),
      members: mesh.members().map(m => ({ peerId: m.peerId, status: m.status, runtime: m.capabilities.runtime }))
    }
  },
  async stop (): Promise<void> {
    await node?.stop()
  }
}

;(globalThis as unknown as { shardmeshTab: typeof tab }).shardmeshTab = tab
