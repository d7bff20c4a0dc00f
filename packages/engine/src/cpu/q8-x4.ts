import { f16Table } from '@shardmesh/model'
import { GROUP_BLOCKS, groupPosition, groupsOf, W_GROUP_BYTES } from './wasm/kernel-q8-int.ts'

/**
 * The `Q8_0_X4` layout the integer kernel reads (`wasm/kernel-q8-int.ts`): each row in groups
 * of 4 blocks, their 128 int8 values interleaved two by two, then their 4 scales as f32. A
 * row's last group is padded with zero blocks of scale 0.
 */

/** Repack Q8_0 rows `(rows, cols)` (ggml blocks: f16 d, 32 int8) into `out` at byte offset `at`. */
export function packQ8X4 (q8: Uint8Array, rows: number, cols: number, out: Uint8Array, at: number): void {
  const table = f16Table()
  const blocks = cols / 32
  const groups = groupsOf(cols)
  const view = new DataView(out.buffer, out.byteOffset)
  out.fill(0, at, at + rows * groups * W_GROUP_BYTES)
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < blocks; b++) {
      const src = (r * blocks + b) * 34
      const k = b % GROUP_BLOCKS
      const group = at + (r * groups + Math.floor(b / GROUP_BLOCKS)) * W_GROUP_BYTES
      for (let j = 0; j < 32; j++) out[group + groupPosition(k, j)] = q8[src + 2 + j]
      view.setFloat32(group + 128 + 4 * k, table[q8[src] | (q8[src + 1] << 8)], true)
    }
  }
}

/** Row `r` of a `Q8_0_X4` matrix at byte offset `at` of `bytes`, dequantized into `out` at `outOffset`. */
export function readQ8X4Row (bytes: Uint8Array, at: number, r: number, cols: number, out: Float32Array, outOffset: number): void {
  const groups = groupsOf(cols)
  const row = at + r * groups * W_GROUP_BYTES
  const view = new DataView(bytes.buffer, bytes.byteOffset)
  for (let b = 0; b < cols / 32; b++) {
    const k = b % GROUP_BLOCKS
    const group = row + Math.floor(b / GROUP_BLOCKS) * W_GROUP_BYTES
    const d = view.getFloat32(group + 128 + 4 * k, true)
    for (let j = 0; j < 32; j++) out[outOffset + b * 32 + j] = d * ((bytes[group + groupPosition(k, j)] << 24) >> 24)
  }
}
