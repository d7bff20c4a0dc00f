import type { Capabilities } from './types.ts'

/** The runtime this code runs in, without importing anything platform specific. */
export function detectRuntime (): Capabilities['runtime'] {
  const g = globalThis as { process?: { versions?: { node?: string } }, navigator?: { userAgent?: string } }
  const node = g.process?.versions?.node
  if (node !== undefined) return { name: 'node', version: node }
  const ua = g.navigator?.userAgent ?? 'unknown'
  const m = /(Firefox|Edg|Chrome|Safari)\/(\d+)/.exec(ua)
  return m === null ? { name: 'browser', version: ua.slice(0, 64) } : { name: m[1] === 'Edg' ? 'edge' : m[1].toLowerCase(), version: m[2] }
}

export function defaultCapabilities (): Capabilities {
  return { runtime: detectRuntime(), backend: { kind: 'cpu' }, memoryBytes: 0 }
}
