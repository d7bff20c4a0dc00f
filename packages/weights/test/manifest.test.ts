import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { createTokenizer, readLlama2cTokenizer, syntheticModel, SYNTHETIC_PRESETS } from '@shardmesh/model'
import type { Member } from '@shardmesh/mesh'
import { decodeManifest, decodeTokenizer, encodeManifest, encodeTokenizer, heldRanges, holdsPart, meshProviders, stageParts, weightsNode } from '../src/index.ts'
import type { ModelManifest } from '../src/index.ts'

const storiesTok = join(import.meta.dirname, '..', '..', '..', '..', 'shared', 'models', 'stories260K', 'tok512.bin')

async function manifestOf (preset: keyof typeof SYNTHETIC_PRESETS): Promise<ModelManifest> {
  const w = weightsNode()
  await w.start()
  try {
    return (await w.importModel(syntheticModel(SYNTHETIC_PRESETS[preset]))).manifest
  } finally { await w.stop() }
}

/** The manifest's JSON with `edit` applied, decoded. */
function decodeEdited (m: ModelManifest, edit: (json: any) => void): ModelManifest {
  const json = JSON.parse(JSON.stringify(m))
  edit(json)
  return decodeManifest(new TextEncoder().encode(JSON.stringify(json)), 'test')
}

describe('manifest codec', () => {
  it('round-trips and keeps every field of the layer manifest plus CIDs', async () => {
    const m = await manifestOf('tiny-gqa4-untied')
    expect(decodeManifest(encodeManifest(m), 'x')).toEqual(m)
    expect(m.parts.map(p => p.id)).toEqual(['embedding', 'layer.0', 'layer.1', 'layer.2', 'layer.3', 'head'])
    expect(m.byteLength).toBe(m.parts.reduce((a, p) => a + p.byteLength, 0))
    expect(new Set(m.parts.map(p => p.cid)).size).toBe(m.parts.length)
  })

  it.each([
    ['not JSON', (j: any) => { j.format = undefined }, /format must be "shardmesh-model"/],
    ['a newer version', (j: any) => { j.version = 2 }, /version 2 is not supported/],
    ['a missing config field', (j: any) => { delete j.config.dim }, /config\.dim must be an integer/],
    ['a part too few', (j: any) => { j.parts.pop() }, /expected 6 parts/],
    ['parts out of order', (j: any) => { j.parts.reverse() }, /expected id "embedding"/],
    ['a bad CID', (j: any) => { j.parts[1].cid = 'not-a-cid' }, /part layer\.0: "not-a-cid" is not a CID/],
    ['a dag-cbor CID', (j: any) => { j.parts[1].cid = 'bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku' }, /not a CIDv1 UnixFS file/],
    ['an unknown dtype', (j: any) => { j.parts[1].tensors[0].dtype = 'Q5_K' }, /needs name, dtype/],
    ['a tensor size that does not fit its shape', (j: any) => { j.parts[1].tensors[0].byteLength += 4 }, /does not fit/],
    ['a tensor outside its part', (j: any) => { j.parts[1].tensors[0].offset = j.parts[1].byteLength }, /outside the part/],
    ['a wrong total', (j: any) => { j.byteLength += 1 }, /not the parts' sum/],
    ['a tied head without its requirement', (j: any) => { j.config.tiedEmbeddings = true }, /requires must be \["embedding"\]/]
  ])('rejects %s with InvalidManifestError naming the field', async (_what, edit, message) => {
    const m = await manifestOf('tiny-gqa4-untied')
    let err: Error | undefined
    try { decodeEdited(m, edit) } catch (e) { err = e as Error }
    expect(err?.name).toBe('InvalidManifestError')
    expect(err?.message).toMatch(message)
  })

  it('rejects bytes that are not JSON', () => {
    expect(() => decodeManifest(new Uint8Array([0xff, 0x00, 0x7b]), 'bafy')).toThrow(expect.objectContaining({ name: 'InvalidManifestError', message: expect.stringMatching(/manifest bafy is not UTF-8 JSON/) }))
  })
})

describe('tokenizer codec', () => {
  it('round-trips the stories260K tokenizer exactly (pieces, float32 scores), so encoding is unchanged', async () => {
    const spec = readLlama2cTokenizer(new Uint8Array(await readFile(storiesTok)), 512, 'tok512.bin')
    const back = decodeTokenizer(encodeTokenizer(spec), 'x')
    expect(back.pieces).toEqual(spec.pieces)
    expect(new Uint8Array(back.scores.buffer)).toEqual(new Uint8Array(spec.scores.buffer.slice(spec.scores.byteOffset, spec.scores.byteOffset + spec.scores.byteLength)))
    expect(Array.from(spec.scores).some(s => Object.is(s, -0))).toBe(true)
    const text = 'Once upon a time, a little dog named Spot — ünïcode too.'
    expect(createTokenizer(back).encode(text)).toEqual(createTokenizer(spec).encode(text))
  })

  it('rejects a tokenizer whose ids point outside its pieces', () => {
    const spec = syntheticModel(SYNTHETIC_PRESETS['tiny-gqa2']).tokenizer!
    const json = JSON.parse(new TextDecoder().decode(encodeTokenizer(spec)))
    json.bosId = json.pieces.length
    expect(() => decodeTokenizer(new TextEncoder().encode(JSON.stringify(json)), 't')).toThrow(expect.objectContaining({ name: 'InvalidManifestError', message: expect.stringMatching(/bosId must be a piece id/) }))
  })
})

describe('layer ranges and holders', () => {
  const config = { nLayers: 6, tiedEmbeddings: true }

  it('announces maximal runs of held layers', async () => {
    const base = await manifestOf('tiny-gqa2')
    const m = { ...base, config: { ...base.config, nLayers: 6 } }
    expect(heldRanges(m, ['embedding', 'layer.0', 'layer.1', 'layer.3', 'layer.4', 'layer.5', 'head'])).toEqual([[0, 2], [3, 6]])
    expect(heldRanges(m, ['manifest'])).toEqual([])
  })

  it('infers embedding and head holders from ranges (a tied head needs the embedding)', () => {
    expect(holdsPart([[0, 2]], 'embedding', config)).toBe(true)
    expect(holdsPart([[4, 6]], 'embedding', config)).toBe(true)
    expect(holdsPart([[4, 6]], 'embedding', { ...config, tiedEmbeddings: false })).toBe(false)
    expect(holdsPart([[2, 4]], 'head', config)).toBe(false)
    expect(holdsPart([[2, 4]], 'layer.3', config)).toBe(true)
    expect(holdsPart([[2, 4]], 'layer.4', config)).toBe(false)
  })

  it('orders holders: alive peers (rotated per part), then bootstrap nodes; never self or the dead', () => {
    const member = (peerId: string, layers: Array<[number, number]>, role: 'peer' | 'bootstrap' = 'peer', status: Member['status'] = 'alive'): Member =>
      ({ peerId, role, layers, status, addrs: [`/ip4/127.0.0.1/tcp/1/p2p/${peerId}`] }) as unknown as Member
    const members = [member('boot', [[0, 6]], 'bootstrap'), member('a', [[0, 3]]), member('b', [[0, 3]]), member('c', [[3, 6]]), member('dead', [[0, 6]], 'peer', 'dead'), member('me', [[0, 6]])]
    expect(meshProviders(members, 'layer.1', config, 'me', 0).map(p => p.peerId)).toEqual(['a', 'b', 'boot'])
    expect(meshProviders(members, 'layer.1', config, 'me', 1).map(p => p.peerId)).toEqual(['b', 'a', 'boot'])
    expect(meshProviders(members, 'head', config, 'me', 0).map(p => p.peerId)).toEqual(['c', 'boot'])
    expect(meshProviders(members, 'any', null, 'me', 0).map(p => p.peerId)).toEqual(['a', 'b', 'c', 'boot'])
  })

  it('refuses a stage range outside the model', async () => {
    const m = await manifestOf('tiny-gqa2')
    expect(() => stageParts(m, [2, 9])).toThrow(RangeError)
    expect(stageParts(m, [1, 3]).map(p => p.id)).toEqual(['embedding', 'layer.1', 'layer.2', 'head'])
  })
})
