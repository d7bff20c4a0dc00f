import { partsForStage, partTensors } from '@shardmesh/model'
import { InvalidManifestError } from './errors.ts'
import type { ManifestPartRef, ModelManifest } from './types.ts'
import type { LayerRange } from '@shardmesh/mesh'
import type { Tensor } from '@shardmesh/model'

/** The parts a stage running `layers` needs (with the embedding and head as `partsForStage` decides). */
export function stageParts (manifest: ModelManifest, layers: LayerRange, opts: { embed?: boolean, head?: boolean } = {}): ManifestPartRef[] {
  const [l0, l1] = layers
  if (!Number.isInteger(l0) || !Number.isInteger(l1) || l0 < 0 || l1 > manifest.config.nLayers || l0 >= l1) {
    throw new RangeError(`layers [${l0}, ${l1}) are not a range of the model's ${manifest.config.nLayers} layers`)
  }
  // partsForStage returns elements of manifest.parts, which are ManifestPartRefs
  return partsForStage(manifest, layers, opts) as ManifestPartRef[]
}

/**
 * The tensors of fetched parts as the engine's `TensorSource` (`createStage({ config, layers,
 * tensors })`): zero-copy views into each part's bytes, in their stored dtype.
 */
export function stageTensors (manifest: ModelManifest, parts: Iterable<[string, Uint8Array]>): Map<string, Tensor> {
  const tensors = new Map<string, Tensor>()
  for (const [id, bytes] of parts) {
    const part = manifest.parts.find(p => p.id === id)
    if (part === undefined) throw new InvalidManifestError(`part ${id} is not in the manifest of ${manifest.config.name}`)
    for (const t of partTensors(part, bytes)) tensors.set(t.name, t)
  }
  return tensors
}

/**
 * Layer ranges to announce for the parts held: maximal runs of held layers. A run that starts
 * at layer 0 or ends at the last layer implies the embedding / head to fetchers
 * (`holdsPart`); a peer missing those answers DONT_HAVE and the fetcher moves on.
 */
export function heldRanges (manifest: ModelManifest, held: Iterable<string>): LayerRange[] {
  const ids = new Set(held)
  const ranges: LayerRange[] = []
  let start = -1
  for (let l = 0; l <= manifest.config.nLayers; l++) {
    const has = l < manifest.config.nLayers && ids.has(`layer.${l}`)
    if (has && start < 0) start = l
    if (!has && start >= 0) { ranges.push([start, l]); start = -1 }
  }
  return ranges
}
