/**
 * How a token's piece becomes output bytes:
 * - `bytes`: every byte is kept, so UTF-8 text split over byte-fallback tokens survives.
 * - `runc`: llama2.c run.c `safe_printf`: a piece that is a single byte which is neither
 *   printable nor whitespace in the C locale is dropped (this drops raw bytes >= 0x80).
 */
export type DecodeMode = 'runc' | 'bytes'

const BYTE_PIECE = /^<0x([0-9A-Fa-f]{2})>$/

/** The byte a `<0xHH>` piece stands for, or undefined for any other piece. */
export function bytePieceValue (piece: Uint8Array): number | undefined {
  if (piece.length !== 6) return undefined
  const m = BYTE_PIECE.exec(String.fromCharCode(...piece))
  return m === null ? undefined : parseInt(m[1], 16)
}

/** C locale `isprint(b) || isspace(b)`. */
function printsInC (b: number): boolean {
  return (b >= 0x20 && b <= 0x7e) || (b >= 0x09 && b <= 0x0d)
}

/** run.c `decode`: the bytes a piece prints as; `<0xHH>` pieces print as that byte. */
function output (piece: Uint8Array): Uint8Array {
  const byte = bytePieceValue(piece)
  return byte === undefined ? piece : Uint8Array.of(byte)
}

/** What each piece prints as, anywhere and right after BOS. Built once per tokenizer. */
export interface PieceOutputs {
  plain: Uint8Array[]
  /** run.c strips a leading space from a piece following BOS, before parsing `<0xHH>`. */
  afterBos: Uint8Array[]
}

export function pieceOutputs (pieces: readonly Uint8Array[]): PieceOutputs {
  return {
    plain: pieces.map(output),
    afterBos: pieces.map((p) => output(p[0] === 0x20 ? p.subarray(1) : p))
  }
}

/** run.c `safe_printf` in `runc` mode; returns a view of `bytes`, do not modify it. */
export function filterOutput (bytes: Uint8Array, mode: DecodeMode): Uint8Array {
  if (mode === 'runc' && bytes.length === 1 && !printsInC(bytes[0])) return bytes.subarray(1)
  return bytes
}
