import type { Plane } from './gossip.ts'
import type { GossipFaults } from './types.ts'

/**
 * Fault injection on received gossip, handed to the mesh as `MeshInit.faults` by a test
 * harness (lossy links, a silent peer, a crashed one). The mesh asks it about every message
 * before validation; a mesh without one never drops or delays anything.
 */
export interface GossipFaultInjector {
  /** What to do with one message received on `plane` from `from`: drop it, or hold it `delayMs`. */
  action: (plane: Plane, from: string) => { drop: boolean, delayMs: number }
}

/** An injector whose faults the harness changes at run time. */
export interface SettableGossipFaults extends GossipFaultInjector {
  /** Replace the faults; `null` clears them. */
  set: (faults: GossipFaults | null) => void
}

/** Faults to inject, starting with `initial` (none by default). */
export function gossipFaults (initial: GossipFaults | null = null): SettableGossipFaults {
  let faults = initial
  return {
    set: next => { faults = next },
    action: (plane, from) => faultAction(faults, plane, from)
  }
}

/** What to do with one received message under `faults`: drop it, or hold it for `delayMs`. */
function faultAction (faults: GossipFaults | null, plane: Plane, from: string): { drop: boolean, delayMs: number } {
  if (faults === null) return { drop: false, delayMs: 0 }
  if (faults.planes !== undefined && !faults.planes.includes(plane)) return { drop: false, delayMs: 0 }
  if (faults.from !== undefined && !faults.from.includes(from)) return { drop: false, delayMs: 0 }
  if ((faults.drop ?? 0) > 0 && Math.random() < (faults.drop ?? 0)) return { drop: true, delayMs: 0 }
  return { drop: false, delayMs: (faults.delayMs ?? 0) + Math.random() * (faults.jitterMs ?? 0) }
}
