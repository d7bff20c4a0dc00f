// `--backend cpu|webgpu` of a Node peer: the engine backend its stages compute on, and what it
// announces about it (kind, and for WebGPU what the adapter says) in its mesh capabilities.
import { cpuBackend, webgpuBackend } from '@shardmesh/engine'
import type { Backend } from '@shardmesh/engine'
import type { Capabilities } from '@shardmesh/mesh'
import { CliError } from './errors.ts'

type Values = Record<string, string | boolean | undefined>

export type BackendKind = 'cpu' | 'webgpu'

export const BACKEND_KINDS: BackendKind[] = ['cpu', 'webgpu']

export interface ComputeBackend {
  backend: Backend
  /** `Capabilities.backend`: for WebGPU the adapter's vendor, architecture, description, fallback, shaderF16, subgroups. */
  announced: Capabilities['backend']
  /** One line for people: `cpu`, `webgpu (SwiftShader driver 5.0.0, fallback, no f16)`. */
  label: string
}

function kindOf (raw: string | boolean | undefined, flag: string): BackendKind {
  const s = String(raw ?? 'cpu')
  if (!BACKEND_KINDS.includes(s as BackendKind)) throw new CliError(`${flag} must be cpu or webgpu, got "${s}"`)
  return s as BackendKind
}

/** `--backend` (cpu when absent). */
export function backendOf (values: Values): BackendKind {
  return kindOf(values.backend, '--backend')
}

/** `start --local-backends a,b,…`: one backend per local peer (their count must match), else every local peer gets `--backend`. */
export function localBackendsOf (values: Values, count: number): BackendKind[] {
  const raw = values['local-backends']
  if (raw === undefined) return new Array<BackendKind>(count).fill(backendOf(values))
  const kinds = String(raw).split(',').map(s => kindOf(s.trim(), '--local-backends'))
  if (kinds.length !== count) throw new CliError(`--local-backends lists ${kinds.length} backend(s); --local-peers is ${count}`)
  return kinds
}

/**
 * The backend, opened now: for WebGPU the device is requested here, so a peer without an
 * adapter stops with `WebGpuError` (`no-adapter`, naming VK_ICD_FILENAMES) before it joins —
 * never a silent CPU fallback.
 */
export async function openBackend (kind: BackendKind): Promise<ComputeBackend> {
  if (kind === 'cpu') return { backend: cpuBackend(), announced: { kind: 'cpu' }, label: 'cpu' }
  const backend = webgpuBackend()
  const info = await backend.info()
  return {
    backend,
    announced: {
      kind: 'webgpu',
      adapter: { vendor: info.vendor, architecture: info.architecture, description: info.description, fallback: String(info.fallback), shaderF16: String(info.shaderF16), subgroups: String(info.subgroups) },
      // the engine's largest single binding (the device's storage-binding and buffer limits, the smaller): what the planner checks a weight row against
      limits: { maxStorageBufferBindingSize: info.maxBindingBytes }
    },
    label: `webgpu (${info.description || `${info.vendor} ${info.architecture}`}${info.fallback ? ', CPU-emulated' : ''}, ${info.shaderF16 ? 'f16' : 'no f16'})`
  }
}
