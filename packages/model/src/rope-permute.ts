import type { Tensor } from './types.ts'

/**
 * Q/K projection rows `[nHeads*headDim, in]` between the two RoPE layouts. Within each head
 * of headDim rows, interleaved row 2i = half row i and interleaved row 2i+1 = half row
 * i + headDim/2 — llama.cpp's `convert_hf_to_gguf` permute and its inverse. Works on raw
 * row bytes, so any dtype (quantized too: rows are whole blocks) is permuted losslessly.
 */
function permuteRows (tensor: Tensor, nHeads: number, toInterleaved: boolean): Tensor {
  const rows = tensor.shape[0]
  const headDim = rows / nHeads
  const half = headDim / 2
  const rowBytes = tensor.data.byteLength / rows
  const out = new Uint8Array(tensor.data.byteLength)
  const copy = (from: number, to: number): void => { out.set(tensor.data.subarray(from * rowBytes, (from + 1) * rowBytes), to * rowBytes) }
  for (let h = 0; h < nHeads; h++) {
    const base = h * headDim
    for (let i = 0; i < half; i++) {
      const [a, b] = [base + i, base + i + half] // half layout
      const [c, d] = [base + 2 * i, base + 2 * i + 1] // interleaved layout
      if (toInterleaved) { copy(a, c); copy(b, d) } else { copy(c, a); copy(d, b) }
    }
  }
  return { ...tensor, data: out }
}

/** Interleaved (GGUF, llama2.c) → Hugging Face `half` row order. */
export function interleavedToHalfRows (tensor: Tensor, nHeads: number): Tensor {
  return permuteRows(tensor, nHeads, false)
}

/** Hugging Face `half` → interleaved row order. */
export function halfToInterleavedRows (tensor: Tensor, nHeads: number): Tensor {
  return permuteRows(tensor, nHeads, true)
}
