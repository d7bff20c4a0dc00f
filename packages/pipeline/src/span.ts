import type { Stage } from '@shardmesh/engine'

/**
 * What a hop, a plan stage or a request runs: whole layers `[l0, l1)`, or — strategy
 * attention_feedforward — units `[u0, u1)` (unit 2l is layer l's attention, 2l+1 its
 * feed-forward; `layers` is then their covering range).
 */
export interface Span { layers: [number, number], units?: [number, number] }

/** The span of `h`, to copy onto a new hop (`units` only when it has them). */
export function spanOf (h: Span): Span {
  return h.units === undefined ? { layers: h.layers } : { layers: h.layers, units: h.units }
}

/** The units `h` runs: its own, or those of its whole layers. */
export function unitsOf (h: Span): [number, number] {
  return h.units ?? [2 * h.layers[0], 2 * h.layers[1]]
}

/** One key per span: a whole-layer range and the same units named explicitly are one stage. */
export function spanKey (h: Span): string {
  const [u0, u1] = unitsOf(h)
  return `${u0}-${u1}`
}

/** The key of what `stage` runs. */
export function stageKey (stage: Stage): string {
  const [u0, u1] = stage.units
  return `${u0}-${u1}`
}

/** `[l0, l1)`, or `[l0, l1) units [u0, u1)`, for messages. */
export function spanText (h: Span): string {
  return h.units === undefined ? `[${h.layers.join(', ')})` : `[${h.layers.join(', ')}) units [${h.units.join(', ')})`
}

/** The span with units `[u0, u1)`: whole layers when the units are whole layers. */
export function spanOfUnits (units: [number, number]): Span {
  const layers: [number, number] = [Math.floor(units[0] / 2), Math.ceil(units[1] / 2)]
  return units[0] % 2 === 0 && units[1] % 2 === 0 ? { layers } : { layers, units }
}
