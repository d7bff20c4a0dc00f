import { createMeshPeer, gossipFaults } from '@shardmesh/mesh'
import type { GossipFaults, MeshNode, SettableGossipFaults } from '@shardmesh/mesh'
import type { Command, PeerSnapshot, PeerSpec } from './types.ts'

/**
 * One harness peer's libp2p node with a mutable connection gater: `block(peers)` refuses
 * every connection to or from them (a partition) and closes the open ones; `setFaults`
 * drops or delays the gossip it receives.
 */
export class GatedPeer {
  readonly node: MeshNode
  private readonly blocked: Set<string>
  private readonly faults: SettableGossipFaults
  private reported = 0

  private constructor (node: MeshNode, blocked: Set<string>, faults: SettableGossipFaults) {
    this.node = node
    this.blocked = blocked
    this.faults = faults
  }

  static async create (spec: PeerSpec, bootstrap: string[]): Promise<GatedPeer> {
    const blocked = new Set<string>()
    const faults = gossipFaults()
    const deny = (peerId: { toString: () => string }): boolean => blocked.has(peerId.toString())
    const node = await createMeshPeer({
      meshId: spec.meshId,
      role: spec.bootstrapNode === true ? 'bootstrap' : 'peer',
      relayServer: spec.bootstrapNode === true,
      eligible: spec.eligible,
      expectedMembers: spec.expectedMembers,
      targetConnections: spec.targetConnections,
      timing: spec.timing,
      bootstrap,
      faults,
      connectionGater: {
        denyDialPeer: deny,
        denyInboundEncryptedConnection: deny,
        denyOutboundEncryptedConnection: deny,
        denyInboundRelayedConnection: (relay, remote) => deny(relay) || deny(remote),
        denyOutboundRelayedConnection: (source, destination) => deny(source) || deny(destination)
      }
    })
    return new GatedPeer(node, blocked, faults)
  }

  async block (peers: string[]): Promise<void> {
    for (const p of peers) this.blocked.add(p)
    await Promise.all(this.node.getConnections().filter(c => this.blocked.has(c.remotePeer.toString())).map(async c => { await c.close().catch(() => { c.abort(new Error('partitioned')) }) }))
  }

  unblock (): void {
    this.blocked.clear()
  }

  setFaults (faults: GossipFaults | null): void {
    this.faults.set(faults)
  }

  /** Every election record not reported yet. */
  newHistory (): ReturnType<MeshNode['services']['mesh']['history']> {
    const all = this.node.services.mesh.history()
    const fresh = all.slice(this.reported)
    this.reported = all.length
    return fresh
  }

  snapshot (): PeerSnapshot {
    const mesh = this.node.services.mesh
    const c = mesh.coordinator()
    const state = mesh.state()
    return {
      peerId: mesh.peerId,
      addrs: this.node.getMultiaddrs().map(String),
      coordinator: c.peerId,
      term: c.term,
      role: c.role,
      stateVersion: state.version,
      stateTerm: state.term,
      config: [...state.config],
      data: structuredClone(state.data),
      members: mesh.members().map(m => ({ peerId: m.peerId, status: m.status, transitions: m.transitions })),
      rejections: mesh.rejections(),
      traffic: mesh.traffic(),
      connections: [...new Set(this.node.getConnections().map(x => x.remotePeer.toString()))],
      at: Date.now()
    }
  }

  /** Run a harness command; returns its value. */
  async run (command: Command): Promise<unknown> {
    switch (command.cmd) {
      case 'block': await this.block(command.peers); return null
      case 'unblock': this.unblock(); return null
      case 'faults': this.setFaults(command.faults); return null
      case 'propose': return await this.node.services.mesh.propose(command.tx, { signal: AbortSignal.timeout(10_000) })
      case 'stop': await this.node.stop(); return null
    }
  }

  /** Crash in place (in-process peers): refuse everything, drop every connection, stop without goodbye. */
  async crash (): Promise<void> {
    this.setFaults({ drop: 1 })
    for (const c of this.node.getConnections()) this.blocked.add(c.remotePeer.toString())
    for (const c of this.node.getConnections()) c.abort(new Error('crashed'))
    await this.node.stop()
  }
}
