import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { convertTensor } from '../src/convert.ts'
import { parseSafetensors } from '../src/safetensors/parse.ts'
import { readSafetensorsModel } from '../src/safetensors/read.ts'
import { writeSafetensorsModel } from '../src/safetensors/write.ts'
import { SYNTHETIC_PRESETS, syntheticModel } from '../src/synthetic.ts'
import type { Checkpoint, Tensor } from '../src/types.ts'

/** A safetensors file from a raw header (any JSON) and a data section. */
function rawFile (header: unknown, data: Uint8Array): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header))
  const out = new Uint8Array(8 + json.byteLength + data.byteLength)
  new DataView(out.buffer).setBigUint64(0, BigInt(json.byteLength), true)
  out.set(json, 8)
  out.set(data, 8 + json.byteLength)
  return out
}

/** A well-formed safetensors file holding `tensors` back to back. */
function encode (tensors: Iterable<Tensor>): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } }
  const parts: Uint8Array[] = []
  let offset = 0
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] }
    parts.push(t.data)
    offset += t.data.byteLength
  }
  return rawFile(header, Buffer.concat(parts))
}

/** Re-encodes `path` after `edit` changed its tensors (keyed by stored name). */
async function rewrite (path: string, edit: (tensors: Map<string, Tensor>) => void): Promise<void> {
  const tensors = parseSafetensors(new Uint8Array(await readFile(path)), path)
  edit(tensors)
  await writeFile(path, encode(tensors.values()))
}

async function editConfig (dir: string, edit: (c: Record<string, unknown>) => void): Promise<void> {
  const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'))
  edit(config)
  await writeFile(join(dir, 'config.json'), JSON.stringify(config))
}

function expectSameTensors (a: Checkpoint, b: Checkpoint): void {
  expect([...b.tensors.keys()].sort()).toEqual([...a.tensors.keys()].sort())
  for (const [name, t] of a.tensors) {
    const u = b.tensors.get(name)!
    expect({ name: u.name, dtype: u.dtype, shape: u.shape }, name).toEqual({ name, dtype: t.dtype, shape: t.shape })
    expect(Buffer.compare(u.data, t.data), name).toBe(0)
  }
}

const f32 = (values: number[]): Uint8Array => new Uint8Array(Float32Array.from(values).buffer)

describe('parseSafetensors', () => {
  it('returns zero-copy tensors of each float dtype and skips __metadata__', () => {
    const bytes = rawFile({
      __metadata__: { format: 'pt' },
      a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      b: { dtype: 'F16', shape: [1, 2], data_offsets: [8, 12] },
      c: { dtype: 'BF16', shape: [], data_offsets: [12, 14] }
    }, Uint8Array.of(...f32([1, -2]), 0x00, 0x3c, 0x00, 0xc0, 0x80, 0x3f))
    const tensors = parseSafetensors(bytes, 'x.safetensors')
    expect([...tensors.keys()]).toEqual(['a', 'b', 'c'])
    expect(tensors.get('b')).toMatchObject({ name: 'b', dtype: 'F16', shape: [1, 2] })
    expect(new Float32Array(tensors.get('a')!.data.slice().buffer)).toEqual(Float32Array.of(1, -2))
    expect([...tensors.get('c')!.data]).toEqual([0x80, 0x3f])
    expect(tensors.get('c')!.data.buffer).toBe(bytes.buffer)
  })

  it('rejects files shorter than their header or data say', () => {
    expect(() => parseSafetensors(new Uint8Array(5), 'f')).toThrow(expect.objectContaining({ name: 'TruncatedCheckpointError' }))
    const long = rawFile({}, new Uint8Array(0))
    new DataView(long.buffer).setBigUint64(0, 1n << 40n, true)
    expect(() => parseSafetensors(long, 'f')).toThrow(expect.objectContaining({ name: 'TruncatedCheckpointError' }))
    const past = rawFile({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, new Uint8Array(12))
    expect(() => parseSafetensors(past, 'f')).toThrow(/tensor a ends at byte 16 of a 12-byte/)
  })

  it('rejects overlapping, mis-sized and malformed entries', () => {
    const overlap = rawFile({
      a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] }
    }, new Uint8Array(12))
    expect(() => parseSafetensors(overlap, 'f')).toThrow(expect.objectContaining({ name: 'CorruptCheckpointError', message: expect.stringContaining('a and b overlap') }))
    const sized = rawFile({ a: { dtype: 'F16', shape: [3], data_offsets: [0, 8] } }, new Uint8Array(8))
    expect(() => parseSafetensors(sized, 'f')).toThrow(/tensor a \(F16 \[3\]\) needs 6 bytes but its offsets span 8/)
    const malformed = rawFile({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 0] } }, new Uint8Array(0))
    expect(() => parseSafetensors(malformed, 'f')).toThrow(expect.objectContaining({ name: 'CorruptCheckpointError' }))
    const json = rawFile({}, new Uint8Array(0))
    json[8] = 0x7b + 1
    expect(() => parseSafetensors(json, 'f')).toThrow(/not valid JSON/)
  })

  it('names the tensor, dtype and file of an unsupported dtype', () => {
    const bytes = rawFile({ 'model.norm.weight': { dtype: 'I8', shape: [4], data_offsets: [0, 4] } }, new Uint8Array(4))
    expect(() => parseSafetensors(bytes, 'dir/model.safetensors')).toThrow(expect.objectContaining({
      name: 'UnsupportedTensorTypeError',
      message: expect.stringMatching(/dir\/model\.safetensors.*model\.norm\.weight.*I8/)
    }))
  })
})

describe('Hugging Face folders', () => {
  let dir: string
  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'shardmesh-st-')) })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  it('round-trips a tied model through one model.safetensors', async () => {
    const ckpt = syntheticModel(SYNTHETIC_PRESETS['tiny-gqa2'])
    await writeSafetensorsModel(ckpt, dir)
    expect((await readdir(dir)).sort()).toEqual(['config.json', 'model.safetensors'])
    const back = await readSafetensorsModel(dir)
    expect(back).toMatchObject({ format: 'safetensors', source: dir, config: ckpt.config })
    expect(back.tokenizer).toBeUndefined()
    expect(back.hfTokenizerPath).toBeUndefined()
    expectSameTensors(ckpt, back)
  })

  it('round-trips an untied model through shards and an index, and back to one file', async () => {
    const ckpt = syntheticModel(SYNTHETIC_PRESETS['tiny-gqa4-untied'])
    await writeSafetensorsModel(ckpt, dir, { maxShardBytes: 60_000 })
    const files = await readdir(dir)
    const shards = files.filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f))
    expect(shards.length).toBeGreaterThan(2)
    const index = JSON.parse(await readFile(join(dir, 'model.safetensors.index.json'), 'utf8'))
    expect(Object.keys(index.weight_map)).toHaveLength(ckpt.tensors.size)
    expect(new Set(Object.values(index.weight_map))).toEqual(new Set(shards))
    expect(index.metadata.total_size).toBe([...ckpt.tensors.values()].reduce((n, t) => n + t.data.byteLength, 0))
    expect(index.weight_map['lm_head.weight']).toBeDefined()
    const back = await readSafetensorsModel(dir)
    expect(back.config).toEqual(ckpt.config)
    expectSameTensors(ckpt, back)

    await writeSafetensorsModel(ckpt, dir)
    expect(await readdir(dir)).not.toContain('model.safetensors.index.json')
    expectSameTensors(ckpt, await readSafetensorsModel(dir))
  })

  it('keeps F16 and BF16 tensors as stored and records torch_dtype', async () => {
    const base = syntheticModel({ seed: 5 })
    const toBf16 = (t: Tensor): Tensor => {
      const bits = new Uint32Array(t.data.slice().buffer)
      return { ...t, dtype: 'BF16', data: new Uint8Array(Uint16Array.from(bits, (b) => b >>> 16).buffer) }
    }
    for (const [dtype, convert] of [['F16', (t: Tensor) => convertTensor(t, 'F16')], ['BF16', toBf16]] as const) {
      const tensors = new Map([...base.tensors].map(([n, t]) => [n, convert(t)]))
      const ckpt = { ...base, tensors }
      await writeSafetensorsModel(ckpt, dir)
      expect(JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')).torch_dtype).toBe(dtype === 'F16' ? 'float16' : 'bfloat16')
      expectSameTensors(ckpt, await readSafetensorsModel(dir))
    }
  })

  it('puts interleaved Q/K rows back in Hugging Face order per head', async () => {
    const ckpt = syntheticModel({ ...SYNTHETIC_PRESETS['tiny-gqa2'], ropeLayout: 'interleaved' })
    const { nHeads, nKvHeads, headDim, dim } = ckpt.config
    const rowIndexed = (name: string, rows: number): Tensor =>
      ({ name, dtype: 'F32', shape: [rows, dim], data: f32(Array.from({ length: rows * dim }, (_, i) => Math.floor(i / dim))) })
    ckpt.tensors.set('layers.1.wq', rowIndexed('layers.1.wq', nHeads * headDim))
    ckpt.tensors.set('layers.1.wk', rowIndexed('layers.1.wk', nKvHeads * headDim))
    await writeSafetensorsModel(ckpt, dir)
    const back = await readSafetensorsModel(dir)
    expect(back.config).toEqual({ ...ckpt.config, ropeLayout: 'half' })
    for (const [name, heads] of [['layers.1.wq', nHeads], ['layers.1.wk', nKvHeads]] as const) {
      const t = back.tensors.get(name)!
      const firstOfRow = Array.from({ length: heads * headDim }, (_, r) => new DataView(t.data.buffer, t.data.byteOffset).getFloat32(r * dim * 4, true))
      const expected = Array.from({ length: heads * headDim }, (_, r) => {
        const h = Math.floor(r / headDim)
        const i = r % headDim
        return h * headDim + (i < headDim / 2 ? 2 * i : 2 * (i - headDim / 2) + 1)
      })
      expect(firstOfRow, name).toEqual(expected)
    }
    expect(Buffer.compare(back.tensors.get('layers.1.wv')!.data, ckpt.tensors.get('layers.1.wv')!.data)).toBe(0)
  })

  it('refuses quantized tensors', async () => {
    const ckpt = syntheticModel({})
    ckpt.tensors.set('layers.0.w1', convertTensor(ckpt.tensors.get('layers.0.w1')!, 'Q8_0'))
    await expect(writeSafetensorsModel(ckpt, dir)).rejects.toMatchObject({ name: 'UnsupportedTensorTypeError', message: expect.stringContaining('layers.0.w1 is Q8_0') })
  })

  it('reads the config fields, defaults and eos lists of config.json', async () => {
    await writeSafetensorsModel(syntheticModel({ dim: 64, nHeads: 4, nKvHeads: 4 }), dir)
    await editConfig(dir, (c) => {
      for (const key of ['num_key_value_heads', 'head_dim', 'rope_theta', '_name_or_path', 'rope_scaling']) delete c[key]
      c.eos_token_id = [2, 7, 9]
      c.bos_token_id = 1
      c.tie_word_embeddings = true
    })
    await writeFile(join(dir, 'tokenizer.json'), '{}')
    const back = await readSafetensorsModel(dir)
    expect(back.config).toMatchObject({ nKvHeads: 4, headDim: 16, ropeTheta: 10000, name: dir.split('/').pop(), eosId: 2, stopIds: [2, 7, 9, 1] })
    expect(back.hfTokenizerPath).toBe(join(dir, 'tokenizer.json'))
  })

  it('rejects other architectures and Llama variants it cannot run', async () => {
    await writeSafetensorsModel(syntheticModel({}), dir)
    await editConfig(dir, (c) => { c.model_type = 'mistral'; c.architectures = ['MistralForCausalLM'] })
    await expect(readSafetensorsModel(dir)).rejects.toMatchObject({ name: 'UnsupportedArchitectureError', message: expect.stringContaining('mistral') })
    await editConfig(dir, (c) => { c.model_type = 'llama'; c.rope_scaling = { rope_type: 'llama3', factor: 8 } })
    await expect(readSafetensorsModel(dir)).rejects.toMatchObject({ name: 'UnsupportedArchitectureError', message: expect.stringContaining('rope_scaling') })
  })

  it('names what is missing: config.json, weight files, tensors, shards', async () => {
    await expect(readSafetensorsModel(dir)).rejects.toMatchObject({ name: 'MissingFieldError', message: expect.stringContaining('config.json') })
    const ckpt = syntheticModel({})
    await writeSafetensorsModel(ckpt, dir)
    await rewrite(join(dir, 'model.safetensors'), (t) => t.delete('model.layers.1.mlp.up_proj.weight'))
    await expect(readSafetensorsModel(dir)).rejects.toMatchObject({ name: 'MissingFieldError', message: expect.stringContaining('layers.1.w3') })
    await rm(join(dir, 'model.safetensors'))
    await expect(readSafetensorsModel(dir)).rejects.toMatchObject({ name: 'MissingFieldError', message: expect.stringContaining('model.safetensors.index.json') })

    await writeSafetensorsModel(ckpt, dir, { maxShardBytes: 50_000 })
    const shard = (await readdir(dir)).find((f) => f.startsWith('model-00002-of-'))!
    await rm(join(dir, shard))
    await expect(readSafetensorsModel(dir)).rejects.toMatchObject({ name: 'MissingFieldError', message: expect.stringContaining(shard) })
  })

  it('rejects tensors that contradict the config or are not Llama weights', async () => {
    await writeSafetensorsModel(syntheticModel({ hiddenDim: 176 }), dir)
    await editConfig(dir, (c) => { c.intermediate_size = 177 })
    await expect(readSafetensorsModel(dir)).rejects.toMatchObject({ name: 'CorruptCheckpointError', message: expect.stringContaining('layers.0.w1') })
    await editConfig(dir, (c) => { c.intermediate_size = 176 })

    const path = join(dir, 'model.safetensors')
    await rewrite(path, (t) => {
      const norm = t.get('model.norm.weight')!
      t.set('model.layers.0.self_attn.rotary_emb.inv_freq', { ...norm, name: 'model.layers.0.self_attn.rotary_emb.inv_freq' })
      t.set('lm_head.weight', { ...t.get('model.embed_tokens.weight')!, name: 'lm_head.weight' }) // ignored: tied
    })
    expect((await readSafetensorsModel(dir)).tensors.has('output')).toBe(false)
    await rewrite(path, (t) => t.set('model.layers.0.self_attn.q_proj.bias', { ...t.get('model.norm.weight')!, name: 'model.layers.0.self_attn.q_proj.bias' }))
    await expect(readSafetensorsModel(dir)).rejects.toMatchObject({ name: 'UnsupportedArchitectureError', message: expect.stringContaining('q_proj.bias') })
  })

  it('refuses index entries that point outside the folder', async () => {
    await writeSafetensorsModel(syntheticModel({}), dir, { maxShardBytes: 50_000 })
    const indexPath = join(dir, 'model.safetensors.index.json')
    const index = JSON.parse(await readFile(indexPath, 'utf8'))
    index.weight_map['model.norm.weight'] = '../elsewhere.safetensors'
    await writeFile(indexPath, JSON.stringify(index))
    await expect(readSafetensorsModel(dir)).rejects.toMatchObject({ name: 'CorruptCheckpointError', message: expect.stringContaining('elsewhere') })
  })
})
