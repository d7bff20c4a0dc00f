import { createMeshPeer } from '../src/index.ts'
import type { MeshNode, MeshPeerInit } from '../src/index.ts'

/** Start `n` in-process peers on loopback; the first is the others' bootstrap. */
export async function startPeers (n: number, init: MeshPeerInit = {}): Promise<MeshNode[]> {
  const first = await createMeshPeer(init)
  const bootstrap = [first.getMultiaddrs()[0].toString()]
  const rest = await Promise.all(Array.from({ length: n - 1 }, async () => await createMeshPeer({ ...init, bootstrap })))
  return [first, ...rest]
}

export async function stopAll (nodes: MeshNode[]): Promise<void> {
  await Promise.all(nodes.map(async n => { await n.stop() }))
}

/** Poll until `fn` returns something other than undefined/false. */
export async function waitFor<T> (what: string, fn: () => T | undefined | false, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = fn()
    if (v !== undefined && v !== false) return v
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

/** The coordinator all `nodes` agree on (one of them, reporting itself coordinator). */
export function agreed (nodes: MeshNode[]): { peerId: string, term: number } | undefined {
  const views = nodes.map(n => n.services.mesh.coordinator())
  const c = views[0].peerId
  if (c === null || !views.every(v => v.peerId === c && v.term === views[0].term)) return undefined
  const leader = nodes.find(n => n.peerId.toString() === c)
  return leader?.services.mesh.coordinator().role === 'coordinator' ? { peerId: c, term: views[0].term } : undefined
}

export const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }
