import type { Plane } from './gossip.ts'
import type { GossipFaults } from './types.ts'

/** What to do with one received message under `faults`: drop it, or hold it for `delayMs`. */
export function faultAction (faults: GossipFaults | null, plane: Plane, from: string): { drop: boolean, delayMs: number } {
  if (faults === null) return { drop: false, delayMs: 0 }
  if (faults.planes !== undefined && !faults.planes.includes(plane)) return { drop: false, delayMs: 0 }
  if (faults.from !== undefined && !faults.from.includes(from)) return { drop: false, delayMs: 0 }
  if ((faults.drop ?? 0) > 0 && Math.random() < (faults.drop ?? 0)) return { drop: true, delayMs: 0 }
  return { drop: false, delayMs: (faults.delayMs ?? 0) + Math.random() * (faults.jitterMs ?? 0) }
}
