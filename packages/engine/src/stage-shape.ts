import { StageConfigError } from './errors.ts'
import { attentionLayersOfUnits, layersOfUnits, unitRange } from './ranges.ts'
import type { StageInit } from './types.ts'

/** What part of the model a stage runs, resolved from its init (every backend the same way). */
export interface StageShape {
  /** Units `[u0, u1)` (unit 2l: layer l's attention, 2l + 1: its feed-forward). */
  units: [number, number]
  /** Layers touched, whole or in part: `[⌊u0/2⌋, ⌈u1/2⌉)`. */
  layers: [number, number]
  /** Layers whose attention runs here, so whose KV cache a session keeps. */
  kvLayers: [number, number]
  embed: boolean
  head: boolean
}

/** One layer's part of a stage: its attention half, its feed-forward half, or both. */
export interface LayerPart {
  layer: number
  attention: boolean
  ffn: boolean
}

/** Checks `init.units` (or, without it, `init.layers`) against the model. */
export function stageShape (init: Pick<StageInit, 'config' | 'layers' | 'units' | 'embed' | 'head'>): StageShape {
  const { config } = init
  const total = 2 * config.nLayers
  let units: [number, number]
  if (init.units === undefined) {
    const [l0, l1] = init.layers
    if (!Number.isInteger(l0) || !Number.isInteger(l1) || l0 < 0 || l1 > config.nLayers || l0 > l1) {
      throw new StageConfigError(`layer range [${l0}, ${l1}) does not fit a model of ${config.nLayers} layers`)
    }
    units = unitRange([l0, l1])
  } else {
    if (!Array.isArray(init.units) || init.units.length !== 2) throw new StageConfigError(`units must be a pair [u0, u1), got ${JSON.stringify(init.units)}`)
    const [u0, u1] = init.units
    if (!Number.isInteger(u0) || !Number.isInteger(u1)) throw new StageConfigError(`unit range [${u0}, ${u1}) must be whole numbers`)
    if (u0 >= u1) throw new StageConfigError(`unit range [${u0}, ${u1}) is empty: u0 must be below u1`)
    if (u0 < 0 || u1 > total) {
      throw new StageConfigError(`unit range [${u0}, ${u1}) does not fit a model of ${config.nLayers} layers (units 0..${total}: unit 2l is layer l's attention, 2l + 1 its feed-forward)`)
    }
    units = [u0, u1]
  }
  return {
    units,
    layers: layersOfUnits(units),
    kvLayers: attentionLayersOfUnits(units),
    embed: init.embed ?? units[0] === 0,
    head: init.head ?? units[1] === total
  }
}

/** How messages name a stage: `[l0, l1)` when it runs whole layers, else `units [u0, u1)`. */
export function stageLabel (units: [number, number]): string {
  const [u0, u1] = units
  return u0 % 2 === 0 && u1 % 2 === 0 ? `[${u0 / 2}, ${u1 / 2})` : `units [${u0}, ${u1})`
}

/** The layers of `units` in order, each with the halves that run: only the first may lack attention, only the last its feed-forward. */
export function layerParts (units: [number, number]): LayerPart[] {
  const [u0, u1] = units
  const parts: LayerPart[] = []
  const [l0, l1] = layersOfUnits(units)
  for (let l = l0; l < l1; l++) parts.push({ layer: l, attention: 2 * l >= u0 && 2 * l < u1, ffn: 2 * l + 1 >= u0 && 2 * l + 1 < u1 })
  return parts
}
