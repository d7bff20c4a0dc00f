import { CorruptCheckpointError, TruncatedCheckpointError } from '../errors.ts'
import type { TokenizerSpec } from '../types.ts'

/**
 * Reads a llama2.c tokenizer (`tokenizer.bin`, `tok512.bin`): an int32 `max_token_length`,
 * then per token a float32 score, an int32 byte length and the raw bytes, little-endian.
 * The file does not store the vocabulary size; it comes from the checkpoint header.
 * BOS 1, EOS 2 and UNK 0 are fixed by llama2.c; the dummy prefix is always on.
 */
export function readLlama2cTokenizer (bytes: Uint8Array, vocabSize: number, source: string): TokenizerSpec {
  if (!Number.isInteger(vocabSize) || vocabSize < 3) {
    throw new RangeError(`${source}: vocabulary size ${vocabSize} is not an integer >= 3`)
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (bytes.length < 4) {
    throw new TruncatedCheckpointError(`${source}: ${bytes.length} bytes, shorter than the 4-byte max_token_length header`)
  }
  const maxTokenLength = view.getInt32(0, true)
  if (maxTokenLength <= 0) {
    throw new CorruptCheckpointError(`${source}: max_token_length is ${maxTokenLength}`)
  }

  const pieces: Uint8Array[] = []
  // grown token by token, not allocated for vocabSize up front: the file may end long before
  const scores: number[] = []
  let offset = 4
  for (let id = 0; id < vocabSize; id++) {
    if (offset + 8 > bytes.length) {
      throw new TruncatedCheckpointError(`${source}: ends at byte ${bytes.length} inside the score/length of token ${id} of ${vocabSize}`)
    }
    scores.push(view.getFloat32(offset, true))
    const length = view.getInt32(offset + 4, true)
    offset += 8
    if (length < 0 || length > maxTokenLength) {
      throw new CorruptCheckpointError(`${source}: token ${id} has length ${length}, outside 0..max_token_length (${maxTokenLength})`)
    }
    if (offset + length > bytes.length) {
      throw new TruncatedCheckpointError(`${source}: ends at byte ${bytes.length} inside the ${length} bytes of token ${id} of ${vocabSize}`)
    }
    pieces.push(bytes.slice(offset, offset + length))
    offset += length
  }
  return { pieces, scores: Float32Array.from(scores), bosId: 1, eosId: 2, unkId: 0, addDummyPrefix: true }
}
