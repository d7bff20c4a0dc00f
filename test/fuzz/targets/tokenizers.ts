import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import fc from 'fast-check'
import { expect } from 'vitest'
import { CorruptCheckpointError, createTokenizer, MissingFieldError, readLlama2cTokenizer, syntheticModel, SYNTHETIC_PRESETS, TruncatedCheckpointError, UnsupportedArchitectureError } from '@shardmesh/model'
import type { TokenizerSpec } from '@shardmesh/model'
import { decodeManifest, decodeTokenizer, encodeManifest, encodeTokenizer, InvalidManifestError, weightsNode } from '@shardmesh/weights'
import { readHfTokenizer } from '../../../packages/model/src/tokenizer/hf-json.ts'
import { storiesDir } from '../../fixtures.ts'
import { arbitraryText, expectTyped, mutatedBytes, mutatedJson, Tally } from '../harness.ts'
import type { Target } from '../harness.ts'

const TOKENIZER_ERRORS = [CorruptCheckpointError, TruncatedCheckpointError, UnsupportedArchitectureError, MissingFieldError]

/** A decoded tokenizer must be usable: createTokenizer accepts it, and it encodes and decodes text. */
function usable (spec: TokenizerSpec): void {
  const tok = createTokenizer(spec)
  const ids = tok.encode('Once upon a time, é ü 🙂')
  expect(ids.every(id => Number.isInteger(id) && id >= 0 && id < tok.vocabSize)).toBe(true)
  expect(typeof tok.decode(ids)).toBe('string')
}

/** A small Llama-style tokenizer.json: byte fallback, a Prepend/Replace normalizer, a few merges. */
function hfJson (): Record<string, unknown> {
  const bytes = Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`)
  const pieces = ['<unk>', '<s>', '</s>', ...bytes, '▁', 'a', 'b', 'c', 'ab', 'bc', '▁a', 'abc']
  return {
    version: '1.0',
    added_tokens: [{ id: 0, content: '<unk>', special: true }, { id: 1, content: '<s>', special: true }, { id: 2, content: '</s>', special: true }],
    normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }] },
    pre_tokenizer: null,
    model: { type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null, byte_fallback: true, vocab: Object.fromEntries(pieces.map((p, i) => [p, i])), merges: ['a b', 'b c', '▁ a', 'ab c'] }
  }
}

/** Tokenizer specs as the weights package stores them: random pieces, scores with NaN/∞, ids in range. */
const spec: fc.Arbitrary<TokenizerSpec> = fc.integer({ min: 3, max: 40 }).chain(n => fc.record({
  pieces: fc.array(fc.uint8Array({ maxLength: 8 }), { minLength: n, maxLength: n }),
  scores: fc.array(fc.float(), { minLength: n, maxLength: n }).map(xs => Float32Array.from(xs)),
  types: fc.option(fc.array(fc.integer({ min: -2, max: 6 }), { minLength: n, maxLength: n }).map(xs => Int32Array.from(xs)), { nil: undefined }),
  bosId: fc.nat(n - 1),
  eosId: fc.nat(n - 1),
  unkId: fc.nat(n - 1),
  addDummyPrefix: fc.boolean()
}, { requiredKeys: ['pieces', 'scores', 'bosId', 'eosId', 'unkId', 'addDummyPrefix'] }))

/** Tokenizer files (llama2.c, tokenizer.json, the weights package's own) and model manifests: what a peer reads from disk or IPFS. */
export async function tokenizerTargets (): Promise<Target[]> {
  const tok512 = new Uint8Array(await readFile(join(storiesDir(), 'tok512.bin')))
  const hf = hfJson()
  const stored = encodeTokenizer(syntheticModel(SYNTHETIC_PRESETS['tiny-gqa2']).tokenizer!)
  const w = weightsNode()
  await w.start()
  const manifest = await w.importModel(syntheticModel(SYNTHETIC_PRESETS['tiny-gqa4-untied'])).finally(async () => { await w.stop() })
  const manifestJson = JSON.parse(new TextDecoder().decode(encodeManifest(manifest.manifest)))

  const t = (name: string, runs: number, property: (tally: Tally) => Target['property']): Target => {
    const tally = new Tally()
    return { name, runs, tally, property: property(tally) }
  }
  // offsets of max_token_length and of the first tokens' score/length fields
  const tokFields = [0, 4, 8, 12, 16, 20, 24]
  return [
    t('llama2c-tokenizer/mutated', 1500, tally => () => fc.property(
      fc.oneof(mutatedBytes(tok512, tokFields), fc.uint8Array({ maxLength: 64 })),
      fc.oneof(fc.constant(512), fc.integer({ min: 3, max: 1 << 30 })),
      (bytes, vocab) => { expectTyped(tally, TOKENIZER_ERRORS, () => readLlama2cTokenizer(bytes, vocab, 'tok.bin'), usable) })),
    t('hf-tokenizer/bytes', 1500, tally => () => fc.property(arbitraryText(), bytes => { expectTyped(tally, TOKENIZER_ERRORS, () => readHfTokenizer(bytes, 'tokenizer.json'), usable) })),
    t('hf-tokenizer/mutated', 1500, tally => () => fc.property(
      mutatedJson(hf, ['model', 'vocab', 'merges', 'added_tokens', 'normalizer', 'pre_tokenizer', 'type', 'id', 'content', 'byte_fallback', 'unk_token']),
      bytes => { expectTyped(tally, TOKENIZER_ERRORS, () => readHfTokenizer(bytes, 'tokenizer.json'), usable) })),
    t('stored-tokenizer/mutated', 1500, tally => () => fc.property(
      fc.oneof({ weight: 1, arbitrary: arbitraryText() }, { weight: 4, arbitrary: mutatedJson(JSON.parse(new TextDecoder().decode(stored)), ['pieces', 'scores', 'types', 'bosId', 'eosId', 'unkId']) }),
      bytes => { expectTyped(tally, [InvalidManifestError], () => decodeTokenizer(bytes, 'tokenizer'), usable) })),
    t('stored-tokenizer/round-trip', 500, tally => () => fc.property(spec, s => {
      const back = expectTyped(tally, [], () => decodeTokenizer(encodeTokenizer(s), 'tokenizer'))
      expect(back).toEqual(s)
    })),
    t('manifest/mutated', 1500, tally => () => fc.property(
      fc.oneof({ weight: 1, arbitrary: arbitraryText() }, { weight: 5, arbitrary: mutatedJson(manifestJson, ['config', 'nLayers', 'parts', 'tensors', 'shape', 'offset', 'byteLength', 'cid', 'requires', 'tokenizer']) }),
      bytes => {
        expectTyped(tally, [InvalidManifestError], () => decodeManifest(bytes, 'fuzz'), m => {
          // whatever passes re-encodes to a manifest that decodes the same (as JSON: a -0 reads back as 0)
          expect(JSON.parse(JSON.stringify(decodeManifest(encodeManifest(m), 'again')))).toEqual(JSON.parse(JSON.stringify(m)))
        })
      })),
    t('manifest/round-trip', 200, tally => () => fc.property(fc.constant(manifest.manifest), m => {
      expect(expectTyped(tally, [], () => decodeManifest(encodeManifest(m), 'fuzz'))).toEqual(m)
    }))
  ]
}
