import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { checkLlamaTensors } from '../src/gguf/shapes.ts'
import { readLlama2c } from '../src/llama2c.ts'
import { storiesDir } from '../../../test/fixtures.ts'

const path = join(storiesDir(), 'stories260K.bin')
const bytes = new Uint8Array(readFileSync(path))

/** A copy of the file with header field `i` (0..6) set to `v`. */
function withHeader (i: number, v: number, src: Uint8Array = bytes): Uint8Array {
  const copy = src.slice()
  new DataView(copy.buffer).setInt32(4 * i, v, true)
  return copy
}

describe('readLlama2c on stories260K.bin', () => {
  const ckpt = readLlama2c(bytes, path)

  it('reads the header into the normalized config', () => {
    expect(ckpt.format).toBe('llama2c')
    expect(ckpt.source).toBe(path)
    expect(ckpt.config).toEqual({
      architecture: 'llama',
      name: 'stories260K',
      dim: 64,
      hiddenDim: 172,
      nLayers: 5,
      nHeads: 8,
      nKvHeads: 4,
      headDim: 8,
      vocabSize: 512,
      contextLength: 512,
      ropeTheta: 10000,
      ropeLayout: 'interleaved',
      normEps: 1e-5,
      tiedEmbeddings: true,
      bosId: 1,
      eosId: 2,
      stopIds: [2, 1]
    })
    expect(ckpt.tokenizer).toBeUndefined()
  })

  it('maps every array at the byte offsets of the README layout, as zero-copy F32 views', () => {
    const offsets: Record<string, number> = {
      tok_embeddings: 28,
      'layers.0.attention_norm': 131100,
      'layers.0.wq': 132380,
      'layers.0.wk': 214300,
      'layers.0.wv': 255260,
      'layers.0.wo': 296220,
      'layers.0.ffn_norm': 378140,
      'layers.0.w1': 379420,
      'layers.0.w2': 599580,
      'layers.0.w3': 819740,
      norm: 1039900
    }
    for (const [name, offset] of Object.entries(offsets)) {
      const t = ckpt.tensors.get(name)!
      expect(t.data.byteOffset, name).toBe(offset)
      expect(t.data.buffer, name).toBe(bytes.buffer)
      expect(t.dtype).toBe('F32')
    }
    // per-layer arrays are stacked: layer 1 follows layer 0 of the same array
    expect(ckpt.tensors.get('layers.1.wq')!.data.byteOffset).toBe(132380 + 64 * 64 * 4)
    expect(ckpt.tensors.get('layers.4.w3')!.data.byteOffset + 172 * 64 * 4).toBe(1039900)
    expect(ckpt.tensors.size).toBe(2 + 5 * 9)
    expect(ckpt.tensors.has('output')).toBe(false)
    for (const t of ckpt.tensors.values()) expect(t.data.byteOffset % 4, t.name).toBe(0)
    expect(() => checkLlamaTensors(ckpt.tensors, ckpt.config, path)).not.toThrow()
  })

  it('reads an unshared classifier after freq_cis when vocab_size is negative', () => {
    const wcls = new Float32Array(512 * 64).map((_, i) => i)
    const file = new Uint8Array(bytes.byteLength + wcls.byteLength)
    file.set(withHeader(5, -512))
    file.set(new Uint8Array(wcls.buffer), bytes.byteLength)
    const unshared = readLlama2c(file, 'unshared.bin')
    expect(unshared.config.tiedEmbeddings).toBe(false)
    expect(unshared.config.vocabSize).toBe(512)
    const output = unshared.tensors.get('output')!
    expect(output.shape).toEqual([512, 64])
    expect(output.data.byteOffset).toBe(1056540)
    expect(new Float32Array(output.data.slice().buffer)).toEqual(wcls)
  })
})

describe('readLlama2c rejects bad files', () => {
  it('a file shorter than the header says: TruncatedCheckpointError with expected and actual sizes', () => {
    const err = catchError(() => readLlama2c(bytes.subarray(0, bytes.byteLength - 4), path))
    expect(err.name).toBe('TruncatedCheckpointError')
    expect(err.message).toContain(path)
    expect(err.message).toContain('1056540')
    expect(err.message).toContain('1056536')
  })

  it('a file shorter than the header itself', () => {
    const err = catchError(() => readLlama2c(bytes.subarray(0, 20), 'short.bin'))
    expect(err.name).toBe('TruncatedCheckpointError')
    expect(err.message).toMatch(/short\.bin: .*28 bytes.*20/)
  })

  it('trailing bytes: CorruptCheckpointError', () => {
    const long = new Uint8Array(bytes.byteLength + 4)
    long.set(bytes)
    const err = catchError(() => readLlama2c(long, 'long.bin'))
    expect(err.name).toBe('CorruptCheckpointError')
    expect(err.message).toMatch(/long\.bin: .*1056540 bytes.*1056544/)
  })

  it('a negative vocab_size without the classifier is truncated', () => {
    expect(catchError(() => readLlama2c(withHeader(5, -512), 'x.bin')).name).toBe('TruncatedCheckpointError')
  })

  it('invalid header fields: CorruptCheckpointError naming the field', () => {
    const cases: Array<[number, number, RegExp]> = [
      [0, 0, /dim must be positive, got 0/],
      [1, -172, /hidden_dim must be positive/],
      [2, 0, /n_layers must be positive/],
      [3, 0, /n_heads must be positive/],
      [6, -1, /seq_len must be positive/],
      [3, 7, /dim 64 is not a multiple of n_heads 7/],
      [4, 3, /n_heads 8 is not a multiple of n_kv_heads 3/]
    ]
    for (const [field, value, message] of cases) {
      const err = catchError(() => readLlama2c(withHeader(field, value), 'bad.bin'))
      expect(err.name, String(message)).toBe('CorruptCheckpointError')
      expect(err.message).toMatch(message)
      expect(err.message).toContain('bad.bin')
    }
  })

  it('the versioned "ak42" export format', () => {
    const v1 = withHeader(1, 1, withHeader(0, 0x616b3432))
    const err = catchError(() => readLlama2c(v1, 'v1.bin'))
    expect(err.name).toBe('CorruptCheckpointError')
    expect(err.message).toMatch(/v1\.bin: llama2\.c export version 1 is not supported/)
  })
})

function catchError (fn: () => unknown): Error {
  try {
    fn()
  } catch (err) {
    return err as Error
  }
  throw new Error('expected an error')
}
