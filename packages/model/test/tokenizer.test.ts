import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { storiesDir } from '../../../test/fixtures.ts'
import { createTokenizer, readLlama2cTokenizer } from '../src/tokenizer/index.ts'
import type { TokenizerSpec } from '../src/types.ts'

interface Golden {
  encode_cases: Array<{ text: string, tokens_with_bos: number[], pieces: string[] }>
  cases: Array<{ tag: string, prompt: string, prompt_tokens: number[], output_tokens: number[], text: string }>
}

const dir = storiesDir()
const tokPath = join(dir, 'tok512.bin')
const tokBytes = new Uint8Array(readFileSync(tokPath))
const golden = JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf8')) as Golden
const spec = readLlama2cTokenizer(tokBytes, 512, tokPath)
const tok = createTokenizer(spec)
const utf8 = new TextEncoder()

/**
 * The oracle: llama2.c run.c `encode()` transliterated, with its quadratic merge loop (rescan
 * every adjacent pair, take the best, strict `>` so the leftmost wins ties, shift the array).
 * The one change is that each pair's score is kept in an array and recomputed only for the
 * two pairs a merge touches, so a 20k-character text takes a second, not minutes.
 */
function runcEncode (s: TokenizerSpec, text: string): number[] {
  const key = (b: Uint8Array): string => Buffer.from(b).toString('latin1')
  const vocab = new Map(s.pieces.map((p, id) => [key(p), id]))
  const tokens = [1]
  if (text !== '') tokens.push(vocab.get(' ')!)
  const bytes = utf8.encode(text)
  let buf: number[] = []
  for (let c = 0; c < bytes.length; c++) {
    if ((bytes[c] & 0xc0) !== 0x80) buf = []
    buf.push(bytes[c])
    if (c + 1 < bytes.length && (bytes[c + 1] & 0xc0) === 0x80 && buf.length < 4) continue
    const id = vocab.get(key(Uint8Array.from(buf)))
    if (id !== undefined) tokens.push(id)
    else for (const b of buf) tokens.push(b + 3)
    buf = []
  }
  const pairIds: number[] = []
  const pair = (i: number): void => {
    pairIds[i] = vocab.get(key(s.pieces[tokens[i]]) + key(s.pieces[tokens[i + 1]])) ?? -1
  }
  for (let i = 0; i + 1 < tokens.length; i++) pair(i)
  while (true) {
    let bestScore = -1e10
    let bestIdx = -1
    for (let i = 0; i + 1 < tokens.length; i++) {
      const id = pairIds[i]
      if (id !== -1 && s.scores[id] > bestScore) {
        bestScore = s.scores[id]
        bestIdx = i
      }
    }
    if (bestIdx === -1) break
    tokens[bestIdx] = pairIds[bestIdx]
    tokens.splice(bestIdx + 1, 1)
    pairIds.splice(bestIdx, 1)
    if (bestIdx > 0) pair(bestIdx - 1)
    if (bestIdx + 1 < tokens.length) pair(bestIdx)
    else pairIds.length = tokens.length - 1
  }
  return tokens
}

/** Deterministic text of at least `minLength` characters made of `parts` (mulberry32). */
function randomText (parts: string[], minLength: number, seed: number): string {
  let a = seed >>> 0
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32
  }
  let out = ''
  while (out.length < minLength) out += parts[Math.floor(next() * parts.length)]
  return out
}

describe('llama2.c tok512 tokenizer', () => {
  it('reads the vocabulary', () => {
    expect(spec.pieces).toHaveLength(512)
    expect(tok.vocabSize).toBe(512)
    expect([tok.bosId, tok.eosId, spec.unkId, spec.addDummyPrefix]).toEqual([1, 2, 0, true])
    expect(tok.pieceOf(1)).toEqual(utf8.encode('\n<s>\n'))
    expect(tok.idOf(' ')).toBe(410)
    expect(tok.idOf(' t')).toBe(259)
    expect(tok.idOf(Uint8Array.of(0x3c, 0x30, 0x78, 0x30, 0x30, 0x3e))).toBe(3) // "<0x00>"
    expect(tok.idOf('not a piece')).toBeUndefined()
  })

  it('encodes every golden encode case like run.c', () => {
    for (const c of golden.encode_cases) {
      const ids = tok.encode(c.text)
      expect(ids, JSON.stringify(c.text)).toEqual(c.tokens_with_bos)
      expect(ids.map((id) => tok.pieceOf(id)), JSON.stringify(c.text)).toEqual(c.pieces.map((p) => utf8.encode(p)))
    }
  })

  it('encodes golden prompts and decodes golden outputs to run.c stdout', () => {
    expect(golden.cases.length).toBeGreaterThan(0)
    for (const c of golden.cases) {
      expect(tok.encode(c.prompt), c.tag).toEqual(c.prompt_tokens)
      expect(tok.decode(c.output_tokens, { mode: 'runc' }), c.tag).toBe(c.text)
    }
  })

  it('honours the bos and eos options', () => {
    expect(tok.encode('a', { bos: false, eos: true })).toEqual([261, 2])
    expect(tok.encode('', { bos: false })).toEqual([])
    expect(tok.encode('')).toEqual([1])
  })

  it('decodes pieces with run.c rules', () => {
    const bytes = (prev: number, next: number, mode?: 'runc' | 'bytes'): number[] =>
      [...tok.decodePiece(prev, next, { mode })]
    expect(bytes(1, 259)).toEqual([0x74]) // " t" after BOS loses its space
    expect(bytes(259, 259)).toEqual([0x20, 0x74])
    expect(bytes(1, 410, 'runc')).toEqual([]) // " " after BOS is empty
    expect(bytes(259, 0x41 + 3, 'runc')).toEqual([0x41]) // <0x41> is the byte 'A'
    expect(bytes(1, 0x20 + 3)).toEqual([0x20]) // a raw space byte is not stripped after BOS
    expect(bytes(259, 0x0a + 3, 'runc')).toEqual([0x0a]) // isspace
    expect(bytes(259, 0x07 + 3, 'runc')).toEqual([]) // BEL: neither isprint nor isspace
    expect(bytes(259, 0xe6 + 3, 'runc')).toEqual([])
    expect(bytes(259, 0xe6 + 3, 'bytes')).toEqual([0xe6])
    expect(() => tok.decodePiece(1, 512)).toThrow(RangeError)
  })

  it('round-trips text in bytes mode', () => {
    const texts = ['Hello world', 'a  b   c    d', '  lead and trail  ', 'tab\tand\nnewline\r\n', 'café é',
      '日本語のテキスト', 'emoji 🙂👍🏽 and ☃', '\uFEFFbom first', 'x']
    for (const text of texts) {
      expect(tok.decode(tok.encode(text, { bos: false })), JSON.stringify(text)).toBe(text)
      expect(tok.decode(tok.encode(text).slice(1))).toBe(text)
    }
  })

  it('streams byte-fallback characters whole', () => {
    const text = '🙂 日本語 ☃ 👍🏽!'
    const ids = tok.encode(text, { bos: false })
    const stream = tok.streamDecoder()
    const chunks = ids.map((id) => stream.push(id))
    chunks.push(stream.flush())
    expect(chunks.join('')).toBe(tok.decode(ids))
    expect(chunks.join('')).toBe(text)
    expect(chunks.some((c) => c.includes('\uFFFD'))).toBe(false)
    expect(chunks.slice(0, 5)).toEqual(['', '', '', '', '🙂']) // the dummy space (stripped), then 🙂's four bytes
  })

  it('marks a cut-off character as U+FFFD on flush', () => {
    const stream = tok.streamDecoder()
    expect(stream.push(0xf0 + 3)).toBe('')
    expect(stream.flush()).toBe('\uFFFD')
  })

  it('matches the quadratic run.c reference on random text', () => {
    const alphabet = ['a', 'e', 'l', 'n', 't', 's', ' ', '  ', 'é', '\n', 'Ly', 'ii', 'aaa']
    for (let seed = 1; seed <= 300; seed++) {
      const text = randomText(alphabet, 1 + (seed % 40), seed)
      expect(tok.encode(text), JSON.stringify(text)).toEqual(runcEncode(spec, text))
    }
  })

  it('encodes a long text exactly like run.c (its speed: pnpm bench:model)', () => {
    const words = [...golden.encode_cases.map((c) => c.text), ...golden.cases.map((c) => c.text.slice(0, 300)),
      ' ', '  ', '\n', '\t', 'é', '日本', '🙂', 'the', ' the', 'aaaa', '!!']
    const text = randomText(words, 22_000, 42)
    const ids = tok.encode(text)
    expect(ids).toEqual(runcEncode(spec, text))
    expect(ids.length).toBeGreaterThan(4000)
  })

  it('names the file and token when the tokenizer file is cut short or corrupt', () => {
    const read = (bytes: Uint8Array): unknown => readLlama2cTokenizer(bytes, 512, tokPath)
    expect(() => read(tokBytes.subarray(0, 2))).toThrow(expect.objectContaining({ name: 'TruncatedCheckpointError' }))
    expect(() => read(tokBytes.subarray(0, 10))).toThrow(/tok512\.bin: .*token 0 of 512/)
    expect(() => read(tokBytes.subarray(0, tokBytes.length - 1))).toThrow(expect.objectContaining({
      name: 'TruncatedCheckpointError', message: expect.stringMatching(/tok512\.bin: .*token 511 of 512/)
    }))
    expect(() => readLlama2cTokenizer(tokBytes, 513, tokPath)).toThrow(/token 512 of 513/)
    const corrupt = tokBytes.slice()
    new DataView(corrupt.buffer).setInt32(4 + 4, 1000, true) // length of token 0
    expect(() => read(corrupt)).toThrow(expect.objectContaining({
      name: 'CorruptCheckpointError', message: expect.stringMatching(/tok512\.bin: token 0 has length 1000/)
    }))
  })
})
