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
