import { WebGpuError } from '../errors.ts'
import { SWIFTSHADER_ICD } from './constants.ts'

/**
 * Node: WebGPU through Dawn (npm `webgpu`), loaded on first use so CPU-only processes never
 * open the native module. The object from `create()` is kept at module level for the life
 * of the process: a collected one takes Dawn down with it (DESIGN §2). Browsers load
 * `gpu.browser.ts` instead (package.json `browser` map).
 */
let gpu: GPU | undefined

export const runtime = 'node'

async function nodeGpu (): Promise<GPU> {
  if (gpu === undefined) {
    const { create } = await import('webgpu')
    gpu = create([])
  }
  return gpu
}

export async function requestAdapter (options: GPURequestAdapterOptions): Promise<GPUAdapter> {
  const adapter = await (await nodeGpu()).requestAdapter(options)
  if (adapter === null) {
    const icd = process.env.VK_ICD_FILENAMES
    throw new WebGpuError('no-adapter', 'no WebGPU adapter found by Dawn (npm `webgpu`) in Node. ' +
      `Without a GPU, install Debian chromium (scripts/install-system.sh) and set VK_ICD_FILENAMES=${SWIFTSHADER_ICD} ` +
      `to use its SwiftShader Vulkan driver (VK_ICD_FILENAMES is ${icd === undefined ? 'unset' : `"${icd}"`})`)
  }
  return adapter
}
