import type { Tensor } from '../types.ts'

/**
 * Reorders the rows of a Q or K projection ([nHeads*headDim, in]) from the `interleaved`
 * RoPE layout (GGUF, llama2.c) to Hugging Face's `half` layout, undoing llama.cpp's
 * `convert_hf_to_gguf` permute. Within each head of headDim rows:
 * half row i = interleaved row 2i, half row i + headDim/2 = interleaved row 2i+1.
 * Works on raw bytes, so any dtype whose rows are whole byte runs is fine.
 */
export function interleavedToHalfRows (tensor: Tensor, nHeads: number): Tensor {
  const rows = tensor.shape[0]
  const headDim = rows / nHeads
  const rowBytes = tensor.data.byteLength / rows
  const out = new Uint8Array(tensor.data.byteLength)
  for (let h = 0; h < nHeads; h++) {
    const base = h * headDim
    for (let i = 0; i < headDim / 2; i++) {
      out.set(row(tensor.data, base + 2 * i, rowBytes), (base + i) * rowBytes)
      out.set(row(tensor.data, base + 2 * i + 1, rowBytes), (base + i + headDim / 2) * rowBytes)
    }
  }
  return { ...tensor, data: out }
}

function row (data: Uint8Array, r: number, rowBytes: number): Uint8Array {
  return data.subarray(r * rowBytes, (r + 1) * rowBytes)
}
