// What this tab offers the mesh (DESIGN §8 Capabilities): its browser, its compute backend
// (WebGPU adapter info and limits, or the CPU backend without an adapter), a memory budget
// and the decode tokens/s of a short real engine run on that backend.
import { cpuBackend, webgpuBackend } from '@shardmesh/engine'
import type { Backend } from '@shardmesh/engine'
import type { Capabilities } from '@shardmesh/mesh'

/** Budget when the browser says nothing about memory (navigator.deviceMemory is Chromium-only). */
const DEFAULT_MEMORY_BYTES = 1024 * 1024 * 1024

export interface Adapter {
  vendor: string
  architecture: string
  description: string
  /** SwiftShader and other software adapters. */
  fallback: boolean
  shaderF16: boolean
  subgroups: boolean
  limits: Record<string, number>
}

export interface Detected {
  runtime: { name: string, version: string }
  adapter: Adapter | undefined
  /** Why there is no adapter, when there is none. */
  noAdapter?: string
  memoryBytes: number
}

const LIMITS = ['maxBufferSize', 'maxStorageBufferBindingSize', 'maxComputeWorkgroupStorageSize', 'maxComputeInvocationsPerWorkgroup', 'maxComputeWorkgroupSizeX', 'maxStorageBuffersPerShaderStage'] as const

/** Browser name and major version from the user-agent data (or the UA string). */
export function browserRuntime (): { name: string, version: string } {
  const ua = (navigator as Navigator & { userAgentData?: { brands: Array<{ brand: string, version: string }> } }).userAgentData
  const brand = ua?.brands.find(b => /chrom/i.test(b.brand) && !/not/i.test(b.brand))
  if (brand !== undefined) return { name: 'chrome', version: brand.version }
  const m = /(Firefox|Chrome|Version)\/(\d+)/.exec(navigator.userAgent)
  if (m === null) return { name: 'browser', version: '' }
  return { name: m[1] === 'Firefox' ? 'firefox' : m[1] === 'Chrome' ? 'chrome' : 'safari', version: m[2] }
}

/** WebGPU adapter (info, features, limits) and memory, without creating a device. */
export async function detect (): Promise<Detected> {
  const runtime = browserRuntime()
  const deviceMemory = (navigator as Navigator & { deviceMemory?: number }).deviceMemory
  // a quarter of the device memory Chromium reports (it rounds and caps at 8 GiB): the tab shares it
  const memoryBytes = deviceMemory === undefined ? DEFAULT_MEMORY_BYTES : Math.floor(deviceMemory * 1024 ** 3 / 4)
  const gpu = (navigator as Navigator & { gpu?: GPU }).gpu
  if (gpu === undefined) return { runtime, adapter: undefined, noAdapter: 'navigator.gpu is missing (WebGPU not enabled)', memoryBytes }
  const adapter = await gpu.requestAdapter().catch(() => null)
  if (adapter === null) return { runtime, adapter: undefined, noAdapter: 'requestAdapter() gave no adapter', memoryBytes }
  const info = adapter.info
  const limits: Record<string, number> = {}
  for (const k of LIMITS) limits[k] = Number(adapter.limits[k])
  return {
    runtime,
    adapter: {
      vendor: info.vendor,
      architecture: info.architecture,
      description: info.description,
      fallback: (info as GPUAdapterInfo & { isFallbackAdapter?: boolean }).isFallbackAdapter === true || /swiftshader/i.test(`${info.architecture} ${info.description}`),
      shaderF16: adapter.features.has('shader-f16'),
      subgroups: adapter.features.has('subgroups'),
      limits
    },
    memoryBytes: Math.min(memoryBytes, Number(adapter.limits.maxBufferSize) * 4)
  }
}

/** A backend on this thread (`?worker=0`): WebGPU, or the CPU (WebAssembly) one. */
export function chooseBackend (kind: 'webgpu' | 'cpu'): Backend {
  return kind === 'cpu' ? cpuBackend() : webgpuBackend()
}

/** The capabilities announced with every heartbeat. */
export function capabilitiesOf (d: Detected, backend: Backend, throughput: Capabilities['throughput']): Capabilities {
  const a = d.adapter
  return {
    runtime: d.runtime,
    backend: backend.name === 'webgpu' && a !== undefined
      ? { kind: 'webgpu', adapter: { vendor: a.vendor, architecture: a.architecture, description: a.description, fallback: String(a.fallback), shaderF16: String(a.shaderF16), subgroups: String(a.subgroups) }, limits: a.limits }
      : { kind: 'cpu' },
    memoryBytes: d.memoryBytes,
    throughput
  }
}
