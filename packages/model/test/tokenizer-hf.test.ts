import { describe, expect, it } from 'vitest'
import { createTokenizer, tokenizerFromHfJson } from '../src/tokenizer/index.ts'

/**
 * A tiny Llama-style tokenizer.json. Merge ranks: 0 "a a", 1 "b c", 2 "a b", 3 "▁ a",
 * 4 "a bc". "ca" is in the vocabulary but no merge makes it, so HF never produces it.
 * Only the bytes of "é" (C3 A9) have byte-fallback pieces; other unknown characters become <unk>.
 */
function llamaJson (): Record<string, any> {
  return {
    version: '1.0',
    added_tokens: [
      { id: 0, content: '<unk>', special: true },
      { id: 1, content: '<s>', special: true },
      { id: 2, content: '</s>', special: true }
    ],
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'Prepend', prepend: '▁' },
        { type: 'Replace', pattern: { String: ' ' }, content: '▁' }
      ]
    },
    pre_tokenizer: null,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: true,
      vocab: {
        '<unk>': 0, '<s>': 1, '</s>': 2, '<0xC3>': 3, '<0xA9>': 4, '▁': 5, a: 6, b: 7, c: 8,
        aa: 9, bc: 10, ab: 11, '▁a': 12, abc: 13, ca: 14
      },
      merges: ['a a', 'b c', ['a', 'b'], '▁ a', 'a bc']
    }
  }
}

describe('Hugging Face tokenizer.json', () => {
  const spec = tokenizerFromHfJson(llamaJson(), 'tiny/tokenizer.json')
  const tok = createTokenizer(spec)

  it('converts vocabulary, specials and merge ranks', () => {
    expect(spec.pieces.map((p) => new TextDecoder().decode(p))).toEqual([
      '<unk>', '<s>', '</s>', '<0xC3>', '<0xA9>', ' ', 'a', 'b', 'c', 'aa', 'bc', 'ab', ' a', 'abc', 'ca'
    ])
    expect([spec.bosId, spec.eosId, spec.unkId, spec.addDummyPrefix]).toEqual([1, 2, 0, true])
    expect([...spec.scores.subarray(9, 14)]).toEqual([-0, -1, -2, -3, -4])
    expect(spec.scores[14]).toBeLessThan(-1e9) // "ca": no merge makes it
    expect(spec.scores[6]).toBeLessThan(-1e9)
  })

  // Each expectation follows HF BPE by hand: the text becomes "▁" + text with spaces as "▁",
  // one symbol per character (or its byte pieces, or <unk>), then the adjacent pair with the
  // lowest merge rank is merged, leftmost first, until no listed merge applies.
  it('encodes like HF BPE', () => {
    // ▁ a b c: bc (1) beats ab (2) and ▁a (3) → ▁ a bc; ▁a (3) beats a+bc (4) → ▁a bc; "▁abc" is no piece
    expect(tok.encode('abc')).toEqual([1, 12, 10])
    // ▁ c a b: "ca" is a piece but no merge → only ab (2) → ▁ c ab
    expect(tok.encode('cab')).toEqual([1, 5, 8, 11])
    // ▁ a a a: aa (0) at two places, leftmost wins → ▁ aa a; then "▁aa" and "aaa" are no pieces
    expect(tok.encode('aaa')).toEqual([1, 5, 9, 6])
    // ▁ a ▁ b: the space is "▁"; only ▁a (3) → ▁a ▁ b
    expect(tok.encode('a b')).toEqual([1, 12, 5, 7])
    // é is no piece → its bytes <0xC3> <0xA9>
    expect(tok.encode('é', { eos: true })).toEqual([1, 5, 3, 4, 2])
    // € (E2 82 AC) has no byte pieces → the whole character is one <unk>
    expect(tok.encode('b€')).toEqual([1, 5, 7, 0])
    expect(tok.encode('')).toEqual([1])
  })

  it('decodes with the leading space stripped after BOS', () => {
    expect(tok.decode([12, 10, 5, 7])).toBe('abc b')
    expect(tok.decode(tok.encode('é a', { bos: false }))).toBe('é a')
  })

  it('reads a Metaspace pre-tokenizer instead of normalizers', () => {
    const json = llamaJson()
    json.normalizer = null
    json.pre_tokenizer = { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false }
    expect(tokenizerFromHfJson(json, 'x').addDummyPrefix).toBe(true)
    json.pre_tokenizer.prepend_scheme = 'never'
    expect(tokenizerFromHfJson(json, 'x').addDummyPrefix).toBe(false)
  })

  it('rejects tokenizers it would get wrong', () => {
    const named = (name: string, message: RegExp): unknown => expect.objectContaining({ name, message: expect.stringMatching(message) })
    const unigram = llamaJson()
    unigram.model.type = 'Unigram'
    expect(() => tokenizerFromHfJson(unigram, 'u/tokenizer.json'))
      .toThrow(named('UnsupportedArchitectureError', /u\/tokenizer\.json: tokenizer model type "Unigram"/))
    const byteLevel = llamaJson()
    byteLevel.pre_tokenizer = { type: 'ByteLevel', add_prefix_space: false }
    expect(() => tokenizerFromHfJson(byteLevel, 'b')).toThrow(named('UnsupportedArchitectureError', /pre_tokenizer/))
    const nfkc = llamaJson()
    nfkc.normalizer.normalizers.push({ type: 'NFKC' })
    expect(() => tokenizerFromHfJson(nfkc, 'n')).toThrow(named('UnsupportedArchitectureError', /normalizer/))
    const badMerge = llamaJson()
    badMerge.model.merges.push('c a b')
    expect(() => tokenizerFromHfJson(badMerge, 'm')).toThrow(named('CorruptCheckpointError', /merge 5/))
    const hole = llamaJson()
    delete hole.model.vocab.b
    expect(() => tokenizerFromHfJson(hole, 'h')).toThrow(named('CorruptCheckpointError', /no token has id 7/))
    expect(() => tokenizerFromHfJson({}, 'e')).toThrow(named('MissingFieldError', /e: no "model"/))
  })
})
