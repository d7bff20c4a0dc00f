import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { expect } from 'vitest'
import { CorruptCheckpointError, MissingFieldError, parseSafetensors, readGguf, readLlama2c, syntheticModel, TruncatedCheckpointError, UnsupportedArchitectureError, UnsupportedTensorTypeError, writeGguf } from '@shardmesh/model'
import type { Checkpoint, Tensor } from '@shardmesh/model'
import { readSafetensorsModel, writeSafetensorsModel } from '@shardmesh/model/node'
import { encodeGguf } from '../../../packages/model/src/gguf/encode.ts'
import type { GgufEntry } from '../../../packages/model/src/gguf/encode.ts'
import { parseGguf } from '../../../packages/model/src/gguf/parse.ts'
import type { GgufValue } from '../../../packages/model/src/gguf/parse.ts'
import { hfConfigJson, parseHfConfig } from '../../../packages/model/src/safetensors/hf-config.ts'
import { storiesDir } from '../../fixtures.ts'
import { EXTREME_U64, expectTyped, expectTypedAsync, mutatedBytes, mutatedJson, Tally } from '../harness.ts'
import type { Target } from '../harness.ts'

/** Every way a checkpoint reader may refuse a file. */
const CHECKPOINT_ERRORS = [CorruptCheckpointError, TruncatedCheckpointError, UnsupportedTensorTypeError, UnsupportedArchitectureError, MissingFieldError]

/** The smallest synthetic model (vocab 354 is the synthetic tokenizer's minimum): ~20 KB as GGUF. */
const TINY = { dim: 8, hiddenDim: 16, nLayers: 2, nHeads: 2, nKvHeads: 1, vocabSize: 354, contextLength: 16, name: 'tiny' }

const smallConfig = fc.record({
  seed: fc.nat(1000),
  heads: fc.integer({ min: 1, max: 4 }),
  group: fc.integer({ min: 1, max: 2 }),
  headPairs: fc.integer({ min: 1, max: 3 }),
  hiddenDim: fc.integer({ min: 1, max: 24 }),
  nLayers: fc.integer({ min: 1, max: 3 }),
  vocabSize: fc.integer({ min: 354, max: 380 }),
  tied: fc.boolean()
}).map(c => syntheticModel({ seed: c.seed, dim: c.heads * c.group * 2 * c.headPairs, nHeads: c.heads * c.group, nKvHeads: c.heads, hiddenDim: c.hiddenDim, nLayers: c.nLayers, vocabSize: c.vocabSize, contextLength: 16, tied: c.tied, name: 'fuzz' }))

// ---------------------------------------------------------------- GGUF metadata and tensor infos

type NumberType = 'u8' | 'i8' | 'u16' | 'i16' | 'u32' | 'i32' | 'f32' | 'f64' | 'u64' | 'i64'
const RANGE: Record<Exclude<NumberType, 'f32' | 'f64'>, [bigint, bigint]> = {
  u8: [0n, 255n], i8: [-128n, 127n], u16: [0n, 65535n], i16: [-32768n, 32767n], u32: [0n, 2n ** 32n - 1n], i32: [-(2n ** 31n), 2n ** 31n - 1n], u64: [0n, 2n ** 64n - 1n], i64: [-(2n ** 63n), 2n ** 63n - 1n]
}

/** The entries a parsed GGUF's metadata was written from (integers as u32, floats as f32). */
function entriesOf (meta: Map<string, GgufValue>): GgufEntry[] {
  return [...meta].map(([key, v]): GgufEntry => {
    if (typeof v === 'string') return { key, type: 'string', value: v }
    if (typeof v === 'boolean') return { key, type: 'bool', value: v }
    if (typeof v === 'bigint') return { key, type: 'u64', value: v }
    if (typeof v === 'number') return { key, type: Number.isInteger(v) && v >= 0 ? 'u32' : 'f32', value: v }
    if (v instanceof Float32Array) return { key, type: 'f32[]', value: v }
    if (v instanceof Int32Array) return { key, type: 'i32[]', value: v }
    return { key, type: 'string[]', value: v as string[] }
  })
}

/** A metadata value of any type, extreme ones often: claimed sizes of gigabytes, NaN, ∞, negative counts. */
const entryValue: fc.Arbitrary<Omit<GgufEntry, 'key'>> = fc.oneof(
  fc.constantFrom(...Object.keys(RANGE) as Array<keyof typeof RANGE>).chain(type => {
    const [min, max] = RANGE[type]
    const edge = fc.constantFrom(...EXTREME_U64.map(v => v > max ? max : v), min, -1n > min ? -1n : min)
    const v = fc.oneof(edge, fc.bigInt({ min, max }))
    return v.map(x => ({ type, value: type === 'u64' || type === 'i64' ? x : Number(x) }))
  }),
  fc.record({ type: fc.constantFrom('f32' as const, 'f64' as const), value: fc.oneof(fc.double(), fc.constantFrom(NaN, Infinity, -Infinity, 0, -1, 1e-30)) }),
  fc.record({ type: fc.constant('bool' as const), value: fc.boolean() }),
  fc.record({ type: fc.constant('string' as const), value: fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('llama', 'none', 'linear', 'gpt2'), fc.uint8Array({ maxLength: 8 })) }),
  fc.record({ type: fc.constantFrom('u8[]' as const, 'i32[]' as const, 'f32[]' as const), value: fc.array(fc.integer({ min: 0, max: 127 }), { maxLength: 8 }) }),
  fc.record({ type: fc.constant('string[]' as const), value: fc.array(fc.string({ maxLength: 4 }), { maxLength: 8 }) })
) as fc.Arbitrary<Omit<GgufEntry, 'key'>>

type GgufEdit =
  | { op: 'retype', at: number, entry: Omit<GgufEntry, 'key'> }
  | { op: 'drop', at: number }
  | { op: 'dim', at: number, dim: number, value: number }
  | { op: 'dtype', at: number, dtype: Tensor['dtype'] }
  | { op: 'rename', at: number, name: string }
  | { op: 'drop-tensor', at: number }

const ggufEdit: fc.Arbitrary<GgufEdit> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant('retype' as const), at: fc.nat(), entry: entryValue }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('drop' as const), at: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('dim' as const), at: fc.nat(), dim: fc.nat(3), value: fc.oneof(fc.constantFrom(0, 1, 2 ** 31, 2 ** 32 - 1, 2 ** 40, 2 ** 53 - 1), fc.nat(64)) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('dtype' as const), at: fc.nat(), dtype: fc.constantFrom('F32' as const, 'F16' as const, 'BF16' as const, 'Q8_0' as const, 'Q4_0' as const) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('rename' as const), at: fc.nat(), name: fc.constantFrom('blk.4294967295.attn_q.weight', 'blk.0.attn_q.weight', 'output.weight', 'token_embd.weight', 'blk.-1.ffn_up.weight', 'x') }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('drop-tensor' as const), at: fc.nat() }) }
)

/** GGUF bytes with its metadata and tensor infos edited structurally (types, counts, dims), written by the project's encoder. */
function editedGguf (entries: GgufEntry[], tensors: Tensor[]): fc.Arbitrary<Uint8Array> {
  return fc.array(ggufEdit, { minLength: 1, maxLength: 3 }).map(edits => {
    const es = entries.slice()
    const ts = tensors.map(t => ({ ...t, shape: [...t.shape] }))
    for (const e of edits) {
      if (e.op === 'retype') es[e.at % es.length] = { key: es[e.at % es.length].key, ...e.entry } as GgufEntry
      else if (e.op === 'drop') es.splice(e.at % es.length, 1)
      else if (ts.length === 0) continue
      else if (e.op === 'dim') { const t = ts[e.at % ts.length]; t.shape[e.dim % t.shape.length] = e.value }
      else if (e.op === 'dtype') ts[e.at % ts.length].dtype = e.dtype
      else if (e.op === 'rename') ts[e.at % ts.length].name = e.name
      else ts.splice(e.at % ts.length, 1)
    }
    return encodeGguf(es, ts)
  })
}

/** A GGUF whose only metadata value is an array nested `depth` deep (12 bytes a level). */
function nestedArrayGguf (depth: number): Uint8Array {
  const key = new TextEncoder().encode('x')
  const out = new Uint8Array(24 + 8 + key.length + 4 + 12 * depth + 4 + 8)
  const v = new DataView(out.buffer)
  v.setUint32(0, 0x46554747, true); v.setUint32(4, 3, true); v.setBigUint64(8, 0n, true); v.setBigUint64(16, 1n, true)
  v.setBigUint64(24, BigInt(key.length), true); out.set(key, 32)
  let at = 32 + key.length
  v.setUint32(at, 9, true); at += 4
  for (let i = 0; i < depth; i++) { v.setUint32(at, 9, true); v.setBigUint64(at + 4, 1n, true); at += 12 }
  v.setUint32(at, 4, true); v.setBigUint64(at + 4, 0n, true)
  return out
}

// ---------------------------------------------------------------- safetensors

/** A safetensors file with its JSON header replaced (the length prefix follows it). */
function withHeader (header: Uint8Array, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + header.byteLength + data.byteLength)
  new DataView(out.buffer).setBigUint64(0, BigInt(header.byteLength), true)
  out.set(header, 8)
  out.set(data, 8 + header.byteLength)
  return out
}

function sameTensors (a: Map<string, Tensor>, b: Map<string, Tensor>): void {
  expect([...a.keys()].sort()).toEqual([...b.keys()].sort())
  for (const [name, t] of a) {
    const u = b.get(name)!
    expect([u.dtype, u.shape]).toEqual([t.dtype, t.shape])
    expect(Buffer.from(u.data).equals(Buffer.from(t.data))).toBe(true)
  }
}

// ---------------------------------------------------------------- llama2.c

/** A llama2.c v0 checkpoint of zeros for a header: the layout run.c reads. */
function llama2cBytes ([dim, hidden, layers, heads, kv, vocab, seq]: number[]): Uint8Array {
  const headDim = dim / heads
  const kvDim = kv * headDim
  const perLayer = 2 * dim + dim * dim * 2 + 2 * kvDim * dim + 3 * hidden * dim
  const floats = Math.abs(vocab) * dim + layers * perLayer + dim + seq * headDim + (vocab < 0 ? Math.abs(vocab) * dim : 0)
  const out = new Uint8Array(28 + 4 * floats)
  const v = new DataView(out.buffer)
  ;[dim, hidden, layers, heads, kv, vocab, seq].forEach((x, i) => { v.setInt32(4 * i, x, true) })
  return out
}

/** GGUF, safetensors (with config.json) and llama2.c checkpoints: files a peer loads from disk or a URL. */
export async function checkpointTargets (): Promise<Target[]> {
  const tiny = syntheticModel(TINY)
  const gguf = writeGguf(tiny)
  const parsed = parseGguf(gguf, 'tiny.gguf')
  const entries = entriesOf(parsed.metadata)
  const dir = await mkdtemp(join(tmpdir(), 'fuzz-safetensors-'))
  await writeSafetensorsModel(tiny, dir)
  const st = new Uint8Array(await readFile(join(dir, 'model.safetensors')))
  await rm(dir, { recursive: true })
  const headerLength = Number(new DataView(st.buffer).getBigUint64(0, true))
  const stHeader = JSON.parse(new TextDecoder().decode(st.subarray(8, 8 + headerLength)))
  const stData = st.subarray(8 + headerLength)
  const stories = new Uint8Array(await readFile(join(storiesDir(), 'stories260K.bin')))
  const tinyLlama2c = llama2cBytes([8, 16, 2, 2, 1, 32, 8])
  const stories2c = stories.subarray(0, 28) // the real header, padded by the mutations below

  const t = (name: string, runs: number, property: (tally: Tally) => Target['property']): Target => {
    const tally = new Tally()
    return { name, runs, tally, property: property(tally) }
  }
  const gguFields = [4, 8, 16, 24, 32]
  return [
    t('gguf/bytes', 1500, tally => () => fc.property(
      fc.oneof(
        fc.uint8Array({ maxLength: 256 }),
        fc.uint8Array({ minLength: 24, maxLength: 256 }).map(b => { b.set([0x47, 0x47, 0x55, 0x46, 3, 0, 0, 0]); return b }),
        fc.constantFrom(2000, 20_000).map(nestedArrayGguf)
      ),
      bytes => { expectTyped(tally, CHECKPOINT_ERRORS, () => readGguf(bytes, 'fuzz.gguf')) })),
    t('gguf/mutated', 1500, tally => () => fc.property(mutatedBytes(gguf, gguFields), bytes => { expectTyped(tally, CHECKPOINT_ERRORS, () => readGguf(bytes, 'fuzz.gguf')) })),
    t('gguf/edited', 1500, tally => () => fc.property(editedGguf(entries, parsed.tensors), bytes => { expectTyped(tally, CHECKPOINT_ERRORS, () => readGguf(bytes, 'fuzz.gguf')) })),
    t('gguf/round-trip', 60, tally => () => fc.property(smallConfig, (ckpt: Checkpoint) => {
      const back = expectTyped(tally, [], () => readGguf(writeGguf(ckpt), 'fuzz.gguf'))!
      expect(back.config).toEqual({ ...ckpt.config, ropeLayout: 'interleaved' })
      expect(back.tokenizer?.pieces.length).toBe(ckpt.config.vocabSize)
    })),
    t('safetensors/bytes', 1500, tally => () => fc.property(
      fc.oneof(fc.uint8Array({ maxLength: 256 }), fc.tuple(fc.jsonValue({ maxDepth: 3 }), fc.uint8Array({ maxLength: 64 })).map(([h, d]) => withHeader(new TextEncoder().encode(JSON.stringify(h)), d))),
      bytes => { expectTyped(tally, CHECKPOINT_ERRORS, () => parseSafetensors(bytes, 'fuzz.safetensors')) })),
    t('safetensors/mutated', 1500, tally => () => fc.property(
      fc.oneof(
        { weight: 3, arbitrary: mutatedJson(stHeader, ['dtype', 'shape', 'data_offsets', '__metadata__']).map(h => withHeader(h, stData)) },
        { weight: 1, arbitrary: mutatedBytes(st, [0, 4]) }
      ),
      bytes => { expectTyped(tally, CHECKPOINT_ERRORS, () => parseSafetensors(bytes, 'fuzz.safetensors')) })),
    t('hf-config/mutated', 1500, tally => () => fc.property(mutatedJson(hfConfigJson(tiny.config, 'F32'), ['num_hidden_layers', 'hidden_size', 'eos_token_id', 'rope_scaling', 'model_type', 'head_dim']), text => {
      expectTyped(tally, CHECKPOINT_ERRORS, () => parseHfConfig(JSON.parse(new TextDecoder().decode(text)), 'config.json', 'fuzz'))
    })),
    t('safetensors/round-trip', 20, tally => () => fc.asyncProperty(smallConfig, async (ckpt: Checkpoint) => {
      const dir = await mkdtemp(join(tmpdir(), 'fuzz-safetensors-'))
      try {
        await writeSafetensorsModel({ ...ckpt, config: { ...ckpt.config, ropeLayout: 'half' } }, dir)
        const back = await expectTypedAsync(tally, [], async () => await readSafetensorsModel(dir))
        expect(back!.config).toEqual({ ...ckpt.config, ropeLayout: 'half', name: 'fuzz' })
        sameTensors(ckpt.tensors, back!.tensors)
      } finally { await rm(dir, { recursive: true }) }
    })),
    t('llama2c/mutated', 1500, tally => () => fc.property(
      fc.oneof(mutatedBytes(tinyLlama2c, [0, 4, 8, 12, 16, 20, 24]), mutatedBytes(stories2c, [0, 4, 8, 12, 16, 20, 24]), fc.uint8Array({ maxLength: 64 })),
      bytes => { expectTyped(tally, CHECKPOINT_ERRORS, () => readLlama2c(bytes, 'fuzz.bin')) })),
    t('llama2c/real', 200, tally => () => fc.property(mutatedBytes(stories, [0, 4, 8, 12, 16, 20, 24]), bytes => {
      expectTyped(tally, CHECKPOINT_ERRORS, () => readLlama2c(bytes, 'stories260K.bin'))
    }))
  ]
}
