import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { encodeGguf, type GgufEntry } from '../src/gguf/encode.ts'
import { parseGguf } from '../src/gguf/parse.ts'
import { readGguf } from '../src/gguf/read.ts'
import { readLlama2c } from '../src/llama2c.ts'
import type { Tensor } from '../src/types.ts'
import { storiesDir } from '../../../test/fixtures.ts'

const dir = storiesDir()
const ggufPath = join(dir, 'stories260K.gguf')
const gguf = new Uint8Array(readFileSync(ggufPath))
const text = new TextEncoder()

function catchError (fn: () => unknown): Error {
  try {
    fn()
  } catch (err) {
    return err as Error
  }
  throw new Error('expected an error')
}

/** Offset of the first occurrence of `needle` (as UTF-8) in `hay`. */
function find (hay: Uint8Array, needle: string): number {
  const n = text.encode(needle)
  outer: for (let i = 0; i <= hay.length - n.length; i++) {
    for (let j = 0; j < n.length; j++) if (hay[i + j] !== n[j]) continue outer
    return i
  }
  throw new Error(`${needle} not found`)
}

/** tok512.bin: int32 max_len, then per token f32 score, int32 length, bytes. */
function readTok512 (): { pieces: string[], scores: number[] } {
  const b = readFileSync(join(dir, 'tok512.bin'))
  const pieces: string[] = []
  const scores: number[] = []
  for (let o = 4; o < b.length;) {
    scores.push(b.readFloatLE(o))
    const len = b.readInt32LE(o + 4)
    pieces.push(b.subarray(o + 8, o + 8 + len).toString('utf8'))
    o += 8 + len
  }
  return { pieces, scores }
}

describe('readGguf on stories260K.gguf', () => {
  const ckpt = readGguf(gguf, ggufPath)
  const bin = readLlama2c(new Uint8Array(readFileSync(join(dir, 'stories260K.bin'))), 'stories260K.bin')

  it('gives the same config as the .bin except context length, name and the explicit output copy', () => {
    expect(ckpt.format).toBe('gguf')
    expect(ckpt.config).toEqual({ ...bin.config, contextLength: 2048, name: 'llama', tiedEmbeddings: false })
  })

  it('has every tensor byte-identical to the .bin, as zero-copy views', () => {
    expect([...ckpt.tensors.keys()].sort()).toEqual([...bin.tensors.keys(), 'output'].sort())
    for (const [name, t] of ckpt.tensors) {
      const ref = bin.tensors.get(name === 'output' ? 'tok_embeddings' : name)!
      expect(t.shape, name).toEqual(ref.shape)
      expect(t.dtype, name).toBe('F32')
      expect(Buffer.compare(t.data, ref.data), name).toBe(0)
      expect(t.data.buffer).toBe(gguf.buffer)
    }
    expect(ckpt.tensors.get('tok_embeddings')!.data.byteOffset).toBe(14176)
  })

  it('reads the SentencePiece vocabulary with ▁ as a space, matching tok512.bin but for BOS/EOS', () => {
    const tok = ckpt.tokenizer!
    const ref = readTok512()
    const decoder = new TextDecoder()
    const pieces = tok.pieces.map((p) => decoder.decode(p))
    expect(pieces.length).toBe(512)
    expect(pieces.slice(0, 3)).toEqual(['<unk>', '<s>', '</s>'])
    expect(pieces.slice(3)).toEqual(ref.pieces.slice(3))
    expect(pieces[259]).toBe(' t')
    expect(pieces[410]).toBe(' ')
    expect(Array.from(tok.scores)).toEqual(ref.scores)
    const counts: Record<number, number> = {}
    for (const t of tok.types!) counts[t] = (counts[t] ?? 0) + 1
    expect(counts).toEqual({ 1: 253, 2: 1, 3: 2, 6: 256 })
    expect([tok.bosId, tok.eosId, tok.unkId, tok.addDummyPrefix]).toEqual([1, 2, 0, true])
  })
})

describe('parseGguf', () => {
  it('reads every metadata value type, 64-bit values as bigints and numeric arrays as typed arrays', () => {
    const entries: GgufEntry[] = [
      { key: 'u8', type: 'u8', value: 250 },
      { key: 'i8', type: 'i8', value: -5 },
      { key: 'u16', type: 'u16', value: 65000 },
      { key: 'i16', type: 'i16', value: -300 },
      { key: 'u32', type: 'u32', value: 0xfffffffe },
      { key: 'i32', type: 'i32', value: -70000 },
      { key: 'f32', type: 'f32', value: 0.1 },
      { key: 'f64', type: 'f64', value: 0.1 },
      { key: 'u64', type: 'u64', value: 2n ** 63n + 5n },
      { key: 'i64', type: 'i64', value: -(2n ** 40n) },
      { key: 'bool', type: 'bool', value: false },
      { key: 'str', type: 'string', value: 'héllo ▁' },
      { key: 'f32s', type: 'f32[]', value: [1.5, -2] },
      { key: 'u64s', type: 'u64[]', value: [1n, 2n ** 60n] },
      { key: 'i16s', type: 'i16[]', value: [-1, 2] },
      { key: 'bools', type: 'bool[]', value: [true, false] },
      { key: 'strs', type: 'string[]', value: ['a', '', 'ü'] },
      { key: 'empty', type: 'u8[]', value: [] }
    ]
    const file = parseGguf(encodeGguf(entries, []), 'types.gguf')
    expect(file.version).toBe(3)
    expect(Object.fromEntries(file.metadata)).toEqual({
      u8: 250, i8: -5, u16: 65000, i16: -300, u32: 0xfffffffe, i32: -70000, f32: 0.1, f64: 0.1,
      u64: 2n ** 63n + 5n, i64: -(2n ** 40n), bool: false, str: 'héllo ▁',
      f32s: new Float32Array([1.5, -2]), u64s: new BigUint64Array([1n, 2n ** 60n]), i16s: new Int16Array([-1, 2]),
      bools: [true, false], strs: ['a', '', 'ü'], empty: new Uint8Array(0)
    })
  })

  it('reads nested arrays and version 2 files', () => {
    const u32 = (v: number): number[] => [v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, v >>> 24]
    const u64 = (v: number): number[] => [...u32(v), 0, 0, 0, 0]
    const str = (s: string): number[] => [...u64(text.encode(s).length), ...text.encode(s)]
    const bytes = new Uint8Array([
      ...u32(0x46554747), ...u32(2), ...u64(0), ...u64(1),
      ...str('nested'), ...u32(9), ...u32(9), ...u64(2), // array of 2 arrays
      ...u32(5), ...u64(2), ...u32(1), ...u32(-2 >>> 0), // [1, -2] as i32
      ...u32(8), ...u64(1), ...str('hi') // ['hi']
    ])
    const file = parseGguf(bytes, 'nested.gguf')
    expect(file.version).toBe(2)
    expect(file.metadata.get('nested')).toEqual([new Int32Array([1, -2]), ['hi']])
  })

  it('honours general.alignment', () => {
    const t: Tensor = { name: 'a', dtype: 'F32', shape: [3], data: new Uint8Array(new Float32Array([1, 2, 3]).buffer) }
    const file = parseGguf(encodeGguf([{ key: 'general.alignment', type: 'u32', value: 256 }], [t, { ...t, name: 'b' }]), 'x')
    expect(file.alignment).toBe(256)
    expect(file.dataOffset % 256).toBe(0)
    expect(file.tensors.map((x) => x.data.byteOffset - file.dataOffset)).toEqual([0, 256])
    expect(Array.from(new Float32Array(file.tensors[1].data.slice().buffer))).toEqual([1, 2, 3])
  })
})

describe('readGguf rejects bad files, naming the file and the field', () => {
  /** A patched copy of the real file. */
  const patched = (at: number, bytes: number[]): Uint8Array => {
    const copy = gguf.slice()
    copy.set(bytes, at)
    return copy
  }
  /** Offset of the ggml type field of a tensor info (1-D tensors: name, n_dims, one dim, type). */
  const typeField = (name: string): number => find(gguf, name) + name.length + 4 + 8

  it('bad magic', () => {
    const err = catchError(() => readGguf(patched(0, [...text.encode('GGML')]), ggufPath))
    expect(err.name).toBe('CorruptCheckpointError')
    expect(err.message).toContain(`${ggufPath}: not a GGUF file`)
  })

  it('unsupported versions', () => {
    for (const [v, why] of [[1, /GGUF version 1 is not supported/], [4, /GGUF version 4/], [0x03000000, /big-endian/]] as const) {
      const err = catchError(() => readGguf(patched(4, [v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, v >>> 24]), ggufPath))
      expect(err.name).toBe('CorruptCheckpointError')
      expect(err.message).toMatch(why)
    }
  })

  it('truncation anywhere: TruncatedCheckpointError naming the field or tensor', () => {
    const cases: Array<[number, string]> = [
      [2, 'magic'],
      [12, 'tensor count'],
      [find(gguf, 'tokenizer.ggml.scores') + 40, "metadata 'tokenizer.ggml.scores'"],
      [find(gguf, 'llama.context_length') + 10, "metadata key #11"],
      [find(gguf, 'blk.2.attn_q.weight') + 22, "tensor info 'blk.2.attn_q.weight'"],
      [14176 + 100, "tensor 'token_embd.weight'"],
      [gguf.length - 1, "tensor 'blk.4.ffn_norm.weight'"]
    ]
    for (const [end, what] of cases) {
      const err = catchError(() => readGguf(gguf.subarray(0, end), ggufPath))
      expect(err.name, what).toBe('TruncatedCheckpointError')
      expect(err.message).toContain(ggufPath)
      expect(err.message).toContain(what)
    }
  })

  it('an architecture other than llama', () => {
    const at = find(gguf, 'general.architecture') + 'general.architecture'.length + 4 + 8
    const err = catchError(() => readGguf(patched(at, [...text.encode('gemma')]), ggufPath))
    expect(err.name).toBe('UnsupportedArchitectureError')
    expect(err.message).toBe(`${ggufPath}: architecture 'gemma' is not supported (only llama)`)
  })

  it('a tensor type we do not support', () => {
    const err = catchError(() => readGguf(patched(typeField('output_norm.weight'), [12]), ggufPath))
    expect(err.name).toBe('UnsupportedTensorTypeError')
    expect(err.message).toContain(ggufPath)
    expect(err.message).toContain("tensor 'output_norm.weight' has ggml type 12 (Q4_K)")
  })

  it('misaligned tensor offsets', () => {
    const at = typeField('output_norm.weight') + 4
    const err = catchError(() => readGguf(patched(at, [4]), ggufPath))
    expect(err.name).toBe('CorruptCheckpointError')
    expect(err.message).toMatch(/output_norm\.weight' data offset \d+ is not a multiple of the alignment 32/)
  })
})

describe('readGguf validates the model against its metadata', () => {
  const base: GgufEntry[] = [
    { key: 'general.architecture', type: 'string', value: 'llama' },
    { key: 'llama.context_length', type: 'u32', value: 16 },
    { key: 'llama.embedding_length', type: 'u32', value: 64 },
    { key: 'llama.feed_forward_length', type: 'u32', value: 96 },
    { key: 'llama.block_count', type: 'u32', value: 1 },
    { key: 'llama.attention.head_count', type: 'u32', value: 4 },
    { key: 'llama.attention.head_count_kv', type: 'u32', value: 2 },
    { key: 'llama.attention.layer_norm_rms_epsilon', type: 'f32', value: 1e-6 }
  ]
  const shapes: Record<string, number[]> = {
    'token_embd.weight': [8, 64],
    'output_norm.weight': [64],
    'blk.0.attn_norm.weight': [64],
    'blk.0.attn_q.weight': [64, 64],
    'blk.0.attn_k.weight': [32, 64],
    'blk.0.attn_v.weight': [32, 64],
    'blk.0.attn_output.weight': [64, 64],
    'blk.0.ffn_norm.weight': [64],
    'blk.0.ffn_gate.weight': [96, 64],
    'blk.0.ffn_down.weight': [64, 96],
    'blk.0.ffn_up.weight': [96, 64]
  }
  /** A tiny all-zero F32 Llama GGUF; `edit` replaces (or with null, drops) keys and tensors. */
  const tiny = (edit: { keys?: Record<string, GgufEntry | null>, tensors?: Record<string, number[] | null> } = {}): Uint8Array => {
    const keys = Object.fromEntries(base.map((e) => [e.key, e]))
    const all = { ...shapes, ...edit.tensors }
    const entries = Object.values({ ...keys, ...edit.keys }).filter((e) => e !== null)
    const tensors = Object.entries(all).filter(([, shape]) => shape !== null).map(([name, shape]): Tensor =>
      ({ name, dtype: 'F32', shape: shape!, data: new Uint8Array(4 * shape!.reduce((a, b) => a * b, 1)) }))
    return encodeGguf(entries, tensors)
  }
  const expectError = (bytes: Uint8Array, name: string, message: string | RegExp): void => {
    const err = catchError(() => readGguf(bytes, 'models/tiny.gguf'))
    expect(err.name, String(message)).toBe(name)
    expect(err.message).toContain('models/tiny.gguf')
    expect(err.message).toMatch(message)
  }

  it('fills defaults: vocab from the embeddings, rope theta 10000, BOS/EOS 1/2, name from the file', () => {
    const { config, tokenizer } = readGguf(tiny(), 'models/tiny.gguf')
    expect(config).toMatchObject({
      name: 'tiny', vocabSize: 8, headDim: 16, nKvHeads: 2, ropeTheta: 10000, normEps: 1e-6, tiedEmbeddings: true, bosId: 1, eosId: 2, stopIds: [2, 1]
    })
    expect(tokenizer).toBeUndefined()
    const mha = readGguf(tiny({
      keys: { 'llama.attention.head_count_kv': null },
      tensors: { 'blk.0.attn_k.weight': [64, 64], 'blk.0.attn_v.weight': [64, 64] }
    }), 'x')
    expect(mha.config.nKvHeads).toBe(4)
  })

  it('missing keys and tensors: MissingFieldError naming them', () => {
    expectError(tiny({ keys: { 'llama.block_count': null } }), 'MissingFieldError', /missing metadata key llama\.block_count/)
    expectError(tiny({ keys: { 'general.architecture': null } }), 'MissingFieldError', /general\.architecture/)
    expectError(tiny({ tensors: { 'blk.0.ffn_up.weight': null, 'output_norm.weight': null } }), 'MissingFieldError', /missing tensors layers\.0\.w3, norm/)
  })

  it('shapes that contradict the config: CorruptCheckpointError naming the tensor', () => {
    expectError(tiny({ tensors: { 'blk.0.attn_q.weight': [32, 64] } }), 'CorruptCheckpointError', /layers\.0\.wq has shape \[32, 64\], expected \[64, 64\]/)
    expectError(tiny({ tensors: { 'output.weight': [9, 64] } }), 'CorruptCheckpointError', /tensor output has shape \[9, 64\], expected \[8, 64\]/)
  })

  it('inconsistent or mistyped metadata: CorruptCheckpointError naming the key', () => {
    const u32 = (key: string, value: number): Record<string, GgufEntry> => ({ [key]: { key, type: 'u32', value } })
    expectError(tiny({ keys: u32('llama.attention.head_count', 5) }), 'CorruptCheckpointError', /embedding_length 64 is not a multiple of head_count 5/)
    expectError(tiny({ keys: u32('llama.attention.head_count_kv', 3) }), 'CorruptCheckpointError', /head_count 4 is not a multiple of head_count_kv 3/)
    expectError(tiny({ keys: u32('llama.block_count', 0) }), 'CorruptCheckpointError', /llama\.block_count must be positive/)
    expectError(tiny({ keys: u32('tokenizer.ggml.eos_token_id', 8) }), 'CorruptCheckpointError', /eos_token_id 8 is outside the vocabulary \(8\)/)
    expectError(tiny({ keys: u32('llama.rope.dimension_count', 8) }), 'CorruptCheckpointError', /dimension_count 8 differs from the head size 16/)
    expectError(tiny({ keys: { 'llama.block_count': { key: 'llama.block_count', type: 'string', value: '1' } } }), 'CorruptCheckpointError', /llama\.block_count should be an integer/)
  })

  it('tensors and options outside plain Llama: UnsupportedArchitectureError', () => {
    expectError(tiny({ tensors: { 'rope_freqs.weight': [8] } }), 'UnsupportedArchitectureError', /tensor 'rope_freqs\.weight' is not part of a plain Llama model/)
    expectError(tiny({ keys: { s: { key: 'llama.rope.scaling.type', type: 'string', value: 'yarn' } } }), 'UnsupportedArchitectureError', /RoPE scaling 'yarn'/)
  })

  it('a tokenizer whose arrays disagree in length', () => {
    const keys: Record<string, GgufEntry> = {
      m: { key: 'tokenizer.ggml.model', type: 'string', value: 'llama' },
      t: { key: 'tokenizer.ggml.tokens', type: 'string[]', value: ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'] },
      s: { key: 'tokenizer.ggml.scores', type: 'f32[]', value: [0, 1, 2] }
    }
    expectError(tiny({ keys }), 'CorruptCheckpointError', /tokenizer\.ggml\.scores has 3 entries for 8 tokens/)
    const ids = { b: { key: 'tokenizer.ggml.bos_token_id', type: 'u32', value: 0 }, e: { key: 'tokenizer.ggml.eos_token_id', type: 'u32', value: 1 } } as const
    expectError(tiny({ keys: { ...keys, ...ids, s: null, t: { ...keys.t, value: ['a', 'b', 'c'] } as GgufEntry } }), 'CorruptCheckpointError', /tok_embeddings has shape \[8, 64\], expected \[3, 64\]/)
  })
})
