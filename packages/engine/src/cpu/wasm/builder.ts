/**
 * A tiny WebAssembly binary writer: just enough to emit the matmul kernels (one imported
 * memory, exported functions, structured loops, scalar and 128-bit SIMD instructions).
 * Instructions are written postfix, as in the binary format: push operands, then the op.
 */

export type ValType = 'i32' | 'f32' | 'v128'

const VALTYPE: Record<ValType, number> = { i32: 0x7f, f32: 0x7d, v128: 0x7b }

/** Unsigned LEB128. */
export function uleb (value: number, out: number[] = []): number[] {
  let v = value >>> 0
  do {
    const byte = v & 0x7f
    v >>>= 7
    out.push(v === 0 ? byte : byte | 0x80)
  } while (v !== 0)
  return out
}

/** Signed LEB128 of a 32-bit integer. */
export function sleb (value: number, out: number[] = []): number[] {
  let v = value | 0
  for (;;) {
    const byte = v & 0x7f
    v >>= 7
    if ((v === 0 && (byte & 0x40) === 0) || (v === -1 && (byte & 0x40) !== 0)) {
      out.push(byte)
      return out
    }
    out.push(byte | 0x80)
  }
}

const simd = (op: number): number[] => [0xfd, ...uleb(op)]

/** Operations without immediates, by their text-format names. */
const PLAIN = {
  'i32.eqz': [0x45],
  'i32.lt_u': [0x49],
  'i32.add': [0x6a],
  'i32.sub': [0x6b],
  'i32.mul': [0x6c],
  'i32.and': [0x71],
  'i32.shl': [0x74],
  'i32.shr_u': [0x76],
  'f32.ne': [0x5c],
  'f32.add': [0x92],
  'f32.mul': [0x94],
  'f32.div': [0x95],
  select: [0x1b],
  'i8x16.splat': simd(0x0f),
  'i32x4.splat': simd(0x11),
  'f32x4.splat': simd(0x13),
  'v128.and': simd(0x4e),
  'v128.or': simd(0x50),
  'v128.bitselect': simd(0x52),
  'f32x4.ge': simd(0x46),
  'v128.xor': simd(0x51),
  'i8x16.narrow_i16x8_s': simd(0x65),
  'f32x4.trunc': simd(0x69),
  'i16x8.narrow_i32x4_s': simd(0x85),
  'i8x16.shr_u': simd(0x6d),
  'i8x16.sub': simd(0x71),
  'i16x8.extend_low_i8x16_s': simd(0x87),
  'i16x8.extend_high_i8x16_s': simd(0x88),
  'i32x4.lt_s': simd(0x39),
  'i32x4.extend_low_i16x8_s': simd(0xa7),
  'i32x4.extend_high_i16x8_s': simd(0xa8),
  'i32x4.shl': simd(0xab),
  'i32x4.dot_i16x8_s': simd(0xba),
  'i32x4.add': simd(0xae),
  'f32x4.abs': simd(0xe0),
  'f32x4.add': simd(0xe4),
  'f32x4.sub': simd(0xe5),
  'f32x4.mul': simd(0xe6),
  'f32x4.pmax': simd(0xeb),
  'i32x4.trunc_sat_f32x4_s': simd(0xf8),
  'f32x4.convert_i32x4_s': simd(0xfa)
} satisfies Record<string, number[]>

/** Memory operations: opcode and natural alignment (log2 bytes). */
const MEMORY = {
  'i32.load': [[0x28], 2],
  'f32.load': [[0x2a], 2],
  'i32.load16_u': [[0x2f], 1],
  'f32.store': [[0x38], 2],
  'v128.load': [simd(0x00), 4],
  'v128.load8x8_s': [simd(0x01), 3],
  'v128.load16x4_s': [simd(0x03), 3],
  'v128.store': [simd(0x0b), 4]
} satisfies Record<string, [number[], number]>

export type PlainOp = keyof typeof PLAIN
export type MemoryOp = keyof typeof MEMORY

/** One function body. Locals are numbered after the parameters, in order of `local()` calls. */
export class FunctionBuilder {
  readonly params: ValType[]
  readonly results: ValType[]
  readonly locals: ValType[] = []
  readonly code: number[] = []

  constructor (params: ValType[], results: ValType[] = []) {
    this.params = params
    this.results = results
  }

  local (type: ValType): number {
    this.locals.push(type)
    return this.params.length + this.locals.length - 1
  }

  op (...names: PlainOp[]): this {
    for (const name of names) this.code.push(...PLAIN[name])
    return this
  }

  /** A load or store at `offset` bytes past the address on the stack. */
  mem (name: MemoryOp, offset = 0): this {
    const [bytes, align] = MEMORY[name]
    this.code.push(...bytes, ...uleb(align), ...uleb(offset))
    return this
  }

  get (local: number): this { this.code.push(0x20, ...uleb(local)); return this }
  set (local: number): this { this.code.push(0x21, ...uleb(local)); return this }
  tee (local: number): this { this.code.push(0x22, ...uleb(local)); return this }
  i32 (value: number): this { this.code.push(0x41, ...sleb(value)); return this }
  f32 (value: number): this {
    this.code.push(0x43, ...new Uint8Array(Float32Array.of(value).buffer))
    return this
  }

  /** v128.const with the same 32-bit pattern in every lane. */
  i32x4 (value: number): this {
    const lane = [value & 0xff, (value >>> 8) & 0xff, (value >>> 16) & 0xff, (value >>> 24) & 0xff]
    this.code.push(...simd(0x0c), ...lane, ...lane, ...lane, ...lane)
    return this
  }

  f32x4ExtractLane (lane: number): this { this.code.push(...simd(0x1f), lane); return this }

  /** i8x16.shuffle of the two v128 on the stack, by 32-bit lanes (0..3 the first, 4..7 the second). */
  shuffle32 (lanes: [number, number, number, number]): this {
    this.code.push(...simd(0x0d))
    for (const lane of lanes) this.code.push(4 * lane, 4 * lane + 1, 4 * lane + 2, 4 * lane + 3)
    return this
  }

  /** `local += delta` for an i32 local. */
  bump (local: number, delta: number): this {
    return this.get(local).i32(delta).op('i32.add').set(local)
  }

  /** `while (cond) body`; `cond` leaves an i32 on the stack. */
  while (cond: () => void, body: () => void): this {
    this.code.push(0x02, 0x40, 0x03, 0x40) // block, loop
    cond()
    this.op('i32.eqz')
    this.code.push(0x0d, 1) // br_if to the block's end
    body()
    this.code.push(0x0c, 0, 0x0b, 0x0b) // br to the loop's start; end loop; end block
    return this
  }

  /** Loop while the i32 local `ptr` is below the i32 local `end`. */
  whileBelow (ptr: number, end: number, body: () => void): this {
    return this.while(() => this.get(ptr).get(end).op('i32.lt_u'), body)
  }
}

function section (id: number, payload: number[]): number[] {
  return [id, ...uleb(payload.length), ...payload]
}

function vec (items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()]
}

function name (s: string): number[] {
  const bytes = Array.from(new TextEncoder().encode(s))
  return [...uleb(bytes.length), ...bytes]
}

export interface MemoryImport {
  /** Import as `env.memory`. */
  shared: boolean
  /** Pages of 64 KiB. */
  initial: number
  maximum: number
}

/** A module that imports one memory and exports the given functions. */
export function moduleBytes (memory: MemoryImport, functions: Record<string, FunctionBuilder>): Uint8Array<ArrayBuffer> {
  const signatures: string[] = []
  const types: number[][] = []
  const fnTypes: number[][] = []
  const exports: number[][] = []
  const bodies: number[][] = []
  Object.entries(functions).forEach(([exportName, fn], index) => {
    const sig = fn.params.join(',') + '>' + fn.results.join(',')
    let t = signatures.indexOf(sig)
    if (t < 0) {
      t = signatures.push(sig) - 1
      types.push([0x60, ...vec(fn.params.map(p => [VALTYPE[p]])), ...vec(fn.results.map(r => [VALTYPE[r]]))])
    }
    fnTypes.push(uleb(t))
    exports.push([...name(exportName), 0x00, ...uleb(index)])
    const locals = vec(fn.locals.map(l => [1, VALTYPE[l]]))
    const body = [...locals, ...fn.code, 0x0b]
    bodies.push([...uleb(body.length), ...body])
  })
  const limits = [memory.shared ? 0x03 : 0x01, ...uleb(memory.initial), ...uleb(memory.maximum)]
  const imports = vec([[...name('env'), ...name('memory'), 0x02, ...limits]])
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec(types)),
    ...section(2, imports),
    ...section(3, vec(fnTypes)),
    ...section(7, vec(exports)),
    ...section(10, vec(bodies))
  ])
}
