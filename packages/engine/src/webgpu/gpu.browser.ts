import { WebGpuError } from '../errors.ts'

/** Browsers and workers: WebGPU is `navigator.gpu`. Node loads `gpu.ts` instead. */
export const runtime = 'browser'

export async function requestAdapter (options: GPURequestAdapterOptions): Promise<GPUAdapter> {
  const gpu = (globalThis.navigator as Navigator & { gpu?: GPU } | undefined)?.gpu
  if (gpu === undefined) {
    throw new WebGpuError('no-adapter', 'this browser exposes no WebGPU (navigator.gpu); on Linux, Chromium needs --enable-unsafe-webgpu')
  }
  const adapter = await gpu.requestAdapter(options)
  if (adapter === null) throw new WebGpuError('no-adapter', 'navigator.gpu.requestAdapter() found no adapter')
  return adapter
}
