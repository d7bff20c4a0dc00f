import fc from 'fast-check'
import { getHeapStatistics } from 'node:v8'

/** Seed of every fuzz run: fixed in CI, `FUZZ_SEED=n` (or `pnpm bench:fuzz --seed n`) to explore. */
export const FUZZ_SEED = Number(process.env.FUZZ_SEED ?? 13)

/** Extra memory one decode may leave allocated (array buffers or JS heap) before the case fails. */
const MAX_CASE_ALLOCATION = 96 * 1024 * 1024

type ErrorClass = abstract new (...args: any[]) => Error

/**
 * What a fuzz target saw: cases run, values decoded, rejections by error name. A case that
 * throws anything but the target's typed errors fails the property (and fast-check shrinks it).
 */
export class Tally {
  cases = 0
  decoded = 0
  readonly rejected = new Map<string, number>()

  summary (): string {
    const why = [...this.rejected].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(', ')
    return `${this.cases} cases: ${this.decoded} decoded, ${this.cases - this.decoded} rejected${why === '' ? '' : ` (${why})`}`
  }
}

function allocated (): number {
  const h = getHeapStatistics()
  return h.external_memory + h.used_heap_size
}

/**
 * Decode once: a value (checked by `check`, when given) or an instance of one of `typed`.
 * TypeError, RangeError (stack overflow, allocation failure), plain Error or a decode that
 * leaves more than MAX_CASE_ALLOCATION bytes allocated fails the case.
 */
export function expectTyped<T> (tally: Tally, typed: ErrorClass[], decode: () => T, check?: (value: T) => void): T | undefined {
  tally.cases++
  const before = allocated()
  let value: T | undefined
  let threw = false
  let rejected: unknown
  try {
    value = decode()
  } catch (err) {
    threw = true
    rejected = err
  }
  const grew = allocated() - before
  if (grew > MAX_CASE_ALLOCATION) throw new Error(`one decode left ${(grew / 2 ** 20).toFixed(0)} MiB allocated`)
  if (threw) {
    if (!typed.some(c => rejected instanceof c)) throw new Error(`untyped rejection ${(rejected as Error)?.name}: ${(rejected as Error)?.message}`, { cause: rejected })
    const name = (rejected as Error).name
    tally.rejected.set(name, (tally.rejected.get(name) ?? 0) + 1)
    return undefined
  }
  tally.decoded++
  check?.(value as T)
  return value
}

/** Async twin of `expectTyped`, for decoders that read files. */
export async function expectTypedAsync<T> (tally: Tally, typed: ErrorClass[], decode: () => Promise<T>, check?: (value: T) => void): Promise<T | undefined> {
  tally.cases++
  let value: T
  try {
    value = await decode()
  } catch (err) {
    if (!typed.some(c => err instanceof c)) throw new Error(`untyped rejection ${(err as Error)?.name}: ${(err as Error)?.message}`, { cause: err })
    tally.rejected.set((err as Error).name, (tally.rejected.get((err as Error).name) ?? 0) + 1)
    return undefined
  }
  tally.decoded++
  check?.(value)
  return value
}

/** A fuzz target: one decoder under one kind of input. */
export interface Target {
  /** `decoder/input`, e.g. `frame/mutated`. */
  name: string
  /** Cases in the CI run (the bench multiplies them). */
  runs: number
  tally: Tally
  property: () => fc.IProperty<any> | fc.IAsyncProperty<any>
}

/** Run `t` with the given seed and case count; resolves to its tally, throws fast-check's report on failure. */
export async function runTarget (t: Target, seed: number, numRuns: number): Promise<Tally> {
  await fc.assert(t.property() as fc.IAsyncProperty<any>, { seed, numRuns, endOnFailure: false })
  return t.tally
}

// ---------------------------------------------------------------- byte mutations

/** Values a length, count or dimension field is set to: edges of u8…u64 and sizes of gigabytes. */
export const EXTREME_U64 = [0n, 1n, 2n, 3n, 7n, 255n, 256n, 65535n, 65536n, 2n ** 31n - 1n, 2n ** 31n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 40n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 63n, 2n ** 64n - 1n]

type Mutation =
  | { op: 'flip', at: number, bit: number }
  | { op: 'truncate', at: number }
  | { op: 'extend', bytes: Uint8Array }
  | { op: 'splice', at: number, bytes: Uint8Array }
  | { op: 'set', at: number, width: 1 | 2 | 4 | 8, value: bigint }

const mutationArb = (fields: number[]): fc.Arbitrary<Mutation> => fc.oneof(
  { weight: 3, arbitrary: fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat(7) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('extend' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('splice' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }) },
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('set' as const),
      // a known field offset (header lengths, counts, dims) or anywhere
      at: fields.length > 0 ? fc.oneof(fc.constantFrom(...fields), fc.nat()) : fc.nat(),
      width: fc.constantFrom(1 as const, 2 as const, 4 as const, 8 as const),
      value: fc.oneof(fc.constantFrom(...EXTREME_U64), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }))
    })
  }
)

function apply (bytes: Uint8Array, m: Mutation): Uint8Array {
  const n = bytes.byteLength
  switch (m.op) {
    case 'flip': {
      if (n === 0) return bytes
      const out = bytes.slice()
      out[m.at % n] ^= 1 << m.bit
      return out
    }
    case 'truncate': return bytes.slice(0, m.at % (n + 1))
    case 'extend': {
      const out = new Uint8Array(n + m.bytes.byteLength)
      out.set(bytes)
      out.set(m.bytes, n)
      return out
    }
    case 'splice': {
      const at = m.at % (n + 1)
      const out = new Uint8Array(n + m.bytes.byteLength)
      out.set(bytes.subarray(0, at))
      out.set(m.bytes, at)
      out.set(bytes.subarray(at), at + m.bytes.byteLength)
      return out
    }
    case 'set': {
      if (n < m.width) return bytes
      const out = bytes.slice()
      const at = m.at % (n - m.width + 1)
      const view = new DataView(out.buffer)
      const v = m.value & ((1n << BigInt(8 * m.width)) - 1n)
      if (m.width === 8) view.setBigUint64(at, v, true)
      else if (m.width === 4) view.setUint32(at, Number(v), true)
      else if (m.width === 2) view.setUint16(at, Number(v), true)
      else view.setUint8(at, Number(v))
      return out
    }
  }
}

/**
 * 1–4 structure-aware mutations of `valid`: bit flips, truncations, extensions, splices, and
 * length/count/dimension fields (`fields`: their byte offsets) set to extreme values.
 */
export function mutatedBytes (valid: fc.Arbitrary<Uint8Array> | Uint8Array, fields: number[] = []): fc.Arbitrary<Uint8Array> {
  const base = valid instanceof Uint8Array ? fc.constant(valid) : valid
  return fc.tuple(base, fc.array(mutationArb(fields), { minLength: 1, maxLength: 4 }))
    .map(([bytes, ms]) => ms.reduce(apply, bytes))
}

// ---------------------------------------------------------------- JSON mutations

/** Deep enough that recursive code (JSON.stringify, String(array), structuredClone) overflows the stack. */
const DEEP = 12_000
/**
 * JSON texts that break naive decoders: wrong types, numbers beyond 2^53 or u32, huge
 * strings and arrays, prototype keys, lone surrogates.
 */
export const NASTY_JSON: string[] = [
  'null', 'true', 'false', '0', '-1', '-0', '0.5', '1e308', '-1e308', '1e-320', '4294967295', '4294967296', '9007199254740993', '1e21',
  '""', '"x"', '"\\ud800"', JSON.stringify('x'.repeat(70_000)), '"__proto__"',
  '[]', '{}', '[null]', '[0,1]', '[1,0]', '["a","b"]', `[${new Array(70_000).fill(0).join(',')}]`,
  '{"__proto__":{"polluted":1}}', '{"toString":1,"valueOf":1}', '{"length":4294967295}'
]
/** Nesting far beyond any real message (parsing it costs ~20 ms, so it is drawn rarely). */
export const DEEP_JSON: string[] = [
  '['.repeat(DEEP) + ']'.repeat(DEEP),
  '{"a":'.repeat(DEEP) + '1' + '}'.repeat(DEEP),
  '[{"type":'.repeat(DEEP / 2) + '1' + '}]'.repeat(DEEP / 2)
]

type JsonPath = Array<string | number>

function paths (v: unknown, at: JsonPath = [], out: JsonPath[] = []): JsonPath[] {
  out.push(at)
  if (Array.isArray(v)) v.forEach((x, i) => paths(x, [...at, i], out))
  else if (typeof v === 'object' && v !== null) for (const [k, x] of Object.entries(v)) paths(x, [...at, k], out)
  return out
}

const HOLE = '\u0000fuzz-hole\u0000'

type JsonEdit = { op: 'replace', path: number, raw: string } | { op: 'delete', path: number } | { op: 'add', path: number, key: string, raw: string }

const rawJson: fc.Arbitrary<string> = fc.oneof(
  { weight: 12, arbitrary: fc.constantFrom(...NASTY_JSON) },
  { weight: 8, arbitrary: fc.jsonValue({ maxDepth: 3 }).map(v => JSON.stringify(v)) },
  { weight: 1, arbitrary: fc.constantFrom(...DEEP_JSON) }
)

/**
 * A valid JSON value, edited 1–3 times (a value replaced by a nasty or random one, a key or
 * item deleted, a key added) and written as UTF-8 text. Nested nasties are spliced in as
 * text, so values too deep for JSON.stringify still arrive.
 */
export function mutatedJson (valid: fc.Arbitrary<unknown> | unknown, keys: string[] = []): fc.Arbitrary<Uint8Array> {
  const base = valid instanceof fc.Arbitrary ? valid as fc.Arbitrary<unknown> : fc.constant(valid)
  const key = keys.length > 0 ? fc.oneof(fc.constantFrom(...keys), fc.string({ maxLength: 8 })) : fc.string({ maxLength: 8 })
  const edit: fc.Arbitrary<JsonEdit> = fc.oneof(
    { weight: 4, arbitrary: fc.record({ op: fc.constant('replace' as const), path: fc.nat(), raw: rawJson }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('delete' as const), path: fc.nat() }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('add' as const), path: fc.nat(), key, raw: rawJson }) }
  )
  return fc.tuple(base, fc.array(edit, { minLength: 1, maxLength: 3 })).map(([value, edits]) => {
    let v: unknown = structuredClone(value)
    const raws: string[] = []
    for (const e of edits) {
      const all = paths(v)
      const path = all[e.path % all.length]
      const hole = e.op === 'delete' ? undefined : `${HOLE}${raws.push(e.raw) - 1}`
      if (path.length === 0) { if (e.op === 'replace') v = hole; continue }
      const parent = path.slice(0, -1).reduce<any>((o, k) => o[k], v)
      const last = path[path.length - 1]
      if (e.op === 'replace') parent[last] = hole
      else if (e.op === 'delete') { if (Array.isArray(parent)) parent.splice(Number(last), 1); else delete parent[last] }
      else if (typeof parent[last] === 'object' && parent[last] !== null && !Array.isArray(parent[last])) parent[last][e.key] = hole
      else if (Array.isArray(parent[last])) parent[last].push(hole)
    }
    const text = JSON.stringify(v).replace(new RegExp(`"${HOLE.replaceAll('\u0000', '\\\\u0000')}(\\d+)"`, 'g'), (_, i: string) => raws[Number(i)])
    return new TextEncoder().encode(text)
  })
}

/** Arbitrary bytes, arbitrary UTF-8 text, and arbitrary JSON (the first thing a text decoder meets). */
export function arbitraryText (): fc.Arbitrary<Uint8Array> {
  return fc.oneof(
    fc.uint8Array({ maxLength: 512 }),
    fc.string({ unit: 'binary', maxLength: 256 }).map(s => new TextEncoder().encode(s)),
    fc.jsonValue({ maxDepth: 4 }).map(v => new TextEncoder().encode(JSON.stringify(v)))
  )
}
