import { CorruptCheckpointError, MissingFieldError } from '../errors.ts'
import type { GgufValue } from './parse.ts'

/** Typed access to GGUF metadata: a missing required key → MissingFieldError, a wrong type → CorruptCheckpointError. */
export class Metadata {
  readonly map: Map<string, GgufValue>
  readonly source: string

  constructor (map: Map<string, GgufValue>, source: string) {
    this.map = map
    this.source = source
  }

  has (key: string): boolean {
    return this.map.has(key)
  }

  private get (key: string, required: boolean): GgufValue | undefined {
    const v = this.map.get(key)
    if (v === undefined && required) throw new MissingFieldError(`${this.source}: missing metadata key ${key}`)
    return v
  }

  private wrongType (key: string, want: string): CorruptCheckpointError {
    return new CorruptCheckpointError(`${this.source}: metadata ${key} should be ${want}`)
  }

  /** An integer (any integer type, 64-bit ones included when they fit a JS number). */
  int (key: string, fallback?: number): number {
    const v = this.get(key, fallback === undefined)
    if (v === undefined) return fallback as number
    const n = typeof v === 'bigint' ? Number(v) : v
    if (typeof n !== 'number' || !Number.isSafeInteger(n)) throw this.wrongType(key, 'an integer')
    return n
  }

  float (key: string, fallback?: number): number {
    const v = this.get(key, fallback === undefined)
    if (v === undefined) return fallback as number
    if (typeof v !== 'number') throw this.wrongType(key, 'a number')
    return v
  }

  string (key: string, fallback?: string): string {
    const v = this.get(key, fallback === undefined)
    if (v === undefined) return fallback as string
    if (typeof v !== 'string') throw this.wrongType(key, 'a string')
    return v
  }

  bool (key: string, fallback?: boolean): boolean {
    const v = this.get(key, fallback === undefined)
    if (v === undefined) return fallback as boolean
    if (typeof v !== 'boolean') throw this.wrongType(key, 'a bool')
    return v
  }

  strings (key: string): string[] {
    const v = this.get(key, true)
    if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) throw this.wrongType(key, 'an array of strings')
    return v as string[]
  }

  /** A float array (f32 or f64 elements) as float32; undefined when absent. */
  floats (key: string): Float32Array | undefined {
    const v = this.get(key, false)
    if (v === undefined || v instanceof Float32Array) return v
    if (v instanceof Float64Array) return Float32Array.from(v)
    throw this.wrongType(key, 'an array of floats')
  }

  /** An array of 8/16/32-bit integers as int32; undefined when absent. */
  ints (key: string): Int32Array | undefined {
    const v = this.get(key, false)
    if (v === undefined || v instanceof Int32Array) return v
    if (v instanceof Uint8Array || v instanceof Int8Array || v instanceof Uint16Array || v instanceof Int16Array || v instanceof Uint32Array) {
      return Int32Array.from(v)
    }
    throw this.wrongType(key, 'an array of integers')
  }
}
