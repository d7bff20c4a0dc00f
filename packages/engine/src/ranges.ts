/** Split n layers into k contiguous ranges whose sizes differ by at most one. */
export function evenRanges (nLayers: number, k: number): Array<[number, number]> {
  if (!Number.isInteger(k) || k < 1 || k > nLayers) throw new RangeError(`cannot split ${nLayers} layers into ${k} stages`)
  const ranges: Array<[number, number]> = []
  let start = 0
  for (let i = 0; i < k; i++) {
    const size = Math.floor(nLayers / k) + (i < nLayers % k ? 1 : 0)
    ranges.push([start, start + size])
    start += size
  }
  return ranges
}

/*
 * Units: a transformer block has two, so a model of n layers has 2n. Unit 2l is layer l's
 * attention half (attention norm, QKV, RoPE, KV cache, attention, output projection,
 * residual add), unit 2l + 1 its feed-forward half (FFN norm, w1/w3, SwiGLU, w2, residual
 * add). A stage may start or end between the two halves of a block.
 */

/** The units of whole layers `[l0, l1)`: `[2·l0, 2·l1)`. */
export function unitRange (layers: [number, number]): [number, number] {
  return [2 * layers[0], 2 * layers[1]]
}

/** The layers that units `[u0, u1)` touch, whole or in part: `[⌊u0/2⌋, ⌈u1/2⌉)`. */
export function layersOfUnits (units: [number, number]): [number, number] {
  return [Math.floor(units[0] / 2), Math.ceil(units[1] / 2)]
}

/** The layers whose attention runs in units `[u0, u1)` (and so need a KV cache there): `[⌈u0/2⌉, ⌈u1/2⌉)`. */
export function attentionLayersOfUnits (units: [number, number]): [number, number] {
  return [Math.ceil(units[0] / 2), Math.ceil(units[1] / 2)]
}

/** Split the 2·nLayers units of a model into k contiguous ranges whose sizes differ by at most one. */
export function evenUnitRanges (nLayers: number, k: number): Array<[number, number]> {
  if (!Number.isInteger(k) || k < 1 || k > 2 * nLayers) throw new RangeError(`cannot split ${2 * nLayers} units (${nLayers} layers) into ${k} stages`)
  return evenRanges(2 * nLayers, k)
}
