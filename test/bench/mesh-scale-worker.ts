/**
 * Worker of the scale run (mesh-scale.ts): hosts several in-process mesh peers and reports
 * their state over IPC every 200 ms, plus election records as they happen.
 * Commands: { cmd: 'start', count, bootstrap, init } → { type: 'started', peers: [{ peerId, addr }] };
 *           { cmd: 'crash', peerId }; { cmd: 'stop' }.
 */
import { createMeshPeer, gossipFaults, topicName } from '@shardmesh/mesh'
import type { MeshNode, MeshPeerInit, SettableGossipFaults } from '@shardmesh/mesh'

type Command =
  | { cmd: 'start', count: number, bootstrap: string[], init: MeshPeerInit, waveSize: number, waveGapMs: number }
  | { cmd: 'crash', peerId: string }
  | { cmd: 'stop' }

const nodes: MeshNode[] = []
/** Each node's received-gossip faults (a crash drops everything before the node stops). */
const faults = new Map<MeshNode, SettableGossipFaults>()
const closes: Record<string, number> = {}
function watch (n: MeshNode): void {
  n.addEventListener('connection:open', e => {
    e.detail.addEventListener('close', (ev: Event & { error?: Error }) => {
      const k = ev.error === undefined ? 'clean' : `${ev.error.name}: ${ev.error.message.slice(0, 50)}`
      closes[k] = (closes[k] ?? 0) + 1
    })
  })
}
const send = (m: unknown): void => { if (process.connected) process.send?.(m, undefined, undefined, () => {}) }
process.on('error', () => { process.exit(0) })
const reported = new Map<string, number>()

function report (): void {
  const cpu = process.cpuUsage()
  send({
    type: 'report',
    at: Date.now(),
    cpuMs: (cpu.user + cpu.system) / 1000,
    closes,
    peers: nodes.filter(n => n.status === 'started').map(n => {
      const mesh = n.services.mesh
      const c = mesh.coordinator()
      const history = mesh.history()
      const fresh = history.slice(reported.get(mesh.peerId) ?? 0)
      reported.set(mesh.peerId, history.length)
      return {
        peerId: mesh.peerId,
        coordinator: c.peerId,
        term: c.term,
        role: c.role,
        alive: mesh.members().filter(m => m.status === 'alive').length,
        config: mesh.state().config.length,
        connections: n.getConnections().length,
        gossipPeers: n.services.pubsub.getPeers().length,
        meshPeers: (n.services.pubsub as unknown as { getMeshPeers: (t: string) => string[] }).getMeshPeers(topicName('default', 'election')).length,
        traffic: mesh.traffic(),
        rejections: mesh.rejections(),
        history: fresh
      }
    })
  })
}

const timer = setInterval(report, 200)

process.on('message', (c: Command) => {
  void (async () => {
    if (c.cmd === 'start') {
      const started: MeshNode[] = []
      for (let i = 0; i < c.count; i += c.waveSize) {
        const wave = await Promise.all(Array.from({ length: Math.min(c.waveSize, c.count - i) }, async () => {
          const f = gossipFaults()
          const node = await createMeshPeer({ ...c.init, bootstrap: c.bootstrap, faults: f })
          faults.set(node, f)
          return node
        }))
        wave.forEach(watch)
        started.push(...wave)
        nodes.push(...wave)
        if (i + c.waveSize < c.count) await new Promise(resolve => setTimeout(resolve, c.waveGapMs))
      }
      send({ type: 'started', peers: started.map(n => ({ peerId: n.peerId.toString(), addr: n.getMultiaddrs()[0].toString() })) })
    } else if (c.cmd === 'crash') {
      const node = nodes.find(n => n.peerId.toString() === c.peerId)
      if (node === undefined) return
      report()
      faults.get(node)?.set({ drop: 1 })
      for (const conn of node.getConnections()) conn.abort(new Error('crashed'))
      await node.stop()
    } else {
      clearInterval(timer)
      await Promise.all(nodes.map(async n => { await n.stop() }))
      process.exit(0)
    }
  })()
})
process.on('disconnect', () => { process.exit(0) })
send({ type: 'ready' })
