import type { TokenizerSpec } from '../types.ts'
import { filterOutput, pieceOutputs } from './decode.ts'
import type { DecodeMode } from './decode.ts'
import { mergePieces } from './merge.ts'

export interface EncodeOptions {
  /** Start with BOS. @default true */
  bos?: boolean
  /** End with EOS. @default false */
  eos?: boolean
}

export interface DecodePieceOptions {
  /** @default 'bytes' */
  mode?: DecodeMode
}

export interface DecodeOptions extends DecodePieceOptions {
  /** The token before the first id; a piece after BOS loses its leading space. @default bosId */
  prev?: number
}

/** Turns tokens into text one at a time; a multi-byte character is returned whole, once complete. */
export interface StreamDecoder {
  push(id: number): string
  /** Returns what is still buffered (an incomplete character becomes U+FFFD). */
  flush(): string
}

export interface Tokenizer {
  readonly vocabSize: number
  readonly bosId: number
  readonly eosId: number
  /** llama2.c run.c `encode()`: BOS, dummy-prefix space, one token per codepoint, then BPE merges. */
  encode(text: string, opts?: EncodeOptions): number[]
  /** run.c `decode(prev, next)` (+ `safe_printf` in `runc` mode). The result is a view: do not modify it. */
  decodePiece(prev: number, next: number, opts?: DecodePieceOptions): Uint8Array
  /** decodePiece over `ids`, UTF-8 decoded (invalid sequences become U+FFFD). */
  decode(ids: readonly number[], opts?: DecodeOptions): string
  streamDecoder(opts?: DecodeOptions): StreamDecoder
  /** The raw bytes of a piece (`<0xHH>` pieces as those six characters). Do not modify it. */
  pieceOf(id: number): Uint8Array
  /** The id of the piece with exactly these bytes (a string is taken as UTF-8). */
  idOf(piece: Uint8Array | string): number | undefined
}

const utf8 = new TextEncoder()

/** One JS char per byte: a Map key that compares bytes exactly, and concatenates like bytes. */
function binaryKey (bytes: Uint8Array): string {
  let s = ''
  for (let i = 0; i < bytes.length; i += 4096) {
    s += String.fromCharCode(...bytes.subarray(i, i + 4096))
  }
  return s
}

function hex2 (b: number): string {
  return b.toString(16).toUpperCase().padStart(2, '0')
}

export function createTokenizer (spec: TokenizerSpec): Tokenizer {
  const { pieces, scores, bosId, eosId, unkId, addDummyPrefix } = spec
  const vocabSize = pieces.length
  if (scores.length !== vocabSize) {
    throw new RangeError(`tokenizer has ${vocabSize} pieces but ${scores.length} scores`)
  }
  const checkId = (id: number): void => {
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
      throw new RangeError(`token id ${id} is outside the vocabulary (0..${vocabSize - 1})`)
    }
  }
  checkId(bosId)
  checkId(eosId)
  checkId(unkId)

  const keys = pieces.map(binaryKey)
  const idByKey = new Map<string, number>()
  keys.forEach((key, id) => { if (!idByKey.has(key)) idByKey.set(key, id) })
  const byteIds = Array.from({ length: 256 }, (_, b) => idByKey.get(`<0x${hex2(b)}>`))
  const outputs = pieceOutputs(pieces)
  const pairId = (a: number, b: number): number | undefined => idByKey.get(keys[a] + keys[b])

  /**
   * run.c's split: one symbol per UTF-8 codepoint (at most 4 bytes), else one `<0xHH>` per
   * byte; if a byte has no such piece the codepoint is one UNK (as Hugging Face's BPE does).
   */
  function symbols (bytes: Uint8Array, out: number[]): void {
    let start = 0
    for (let i = 0; i < bytes.length; i++) {
      if ((bytes[i] & 0xc0) !== 0x80) start = i
      const next = bytes[i + 1]
      if (next !== undefined && (next & 0xc0) === 0x80 && i - start + 1 < 4) continue
      const group = bytes.subarray(start, i + 1)
      const id = idByKey.get(binaryKey(group))
      if (id !== undefined) out.push(id)
      else if (group.every((b) => byteIds[b] !== undefined)) for (const b of group) out.push(byteIds[b]!)
      else out.push(unkId)
      start = i + 1
    }
  }

  function decodePiece (prev: number, next: number, opts: DecodePieceOptions = {}): Uint8Array {
    checkId(next)
    const bytes = (prev === bosId ? outputs.afterBos : outputs.plain)[next]
    return filterOutput(bytes, opts.mode ?? 'bytes')
  }

  function streamDecoder (opts: DecodeOptions = {}): StreamDecoder {
    const text = new TextDecoder('utf-8', { ignoreBOM: true })
    let prev = opts.prev ?? bosId
    return {
      push (id) {
        const bytes = decodePiece(prev, id, opts)
        prev = id
        return text.decode(bytes, { stream: true })
      },
      flush: () => text.decode()
    }
  }

  return {
    vocabSize,
    bosId,
    eosId,
    encode (text, opts = {}) {
      // run.c merges over the whole list, BOS included
      const ids: number[] = (opts.bos ?? true) ? [bosId] : []
      symbols(utf8.encode(addDummyPrefix && text.length > 0 ? ' ' + text : text), ids)
      const merged = mergePieces(ids, pairId, scores)
      if (opts.eos ?? false) merged.push(eosId)
      return merged
    },
    decodePiece,
    decode (ids, opts = {}) {
      const stream = streamDecoder(opts)
      let out = ''
      for (const id of ids) out += stream.push(id)
      return out + stream.flush()
    },
    streamDecoder,
    pieceOf (id) {
      checkId(id)
      return pieces[id]
    },
    idOf (piece) {
      return idByKey.get(binaryKey(typeof piece === 'string' ? utf8.encode(piece) : piece))
    }
  }
}
