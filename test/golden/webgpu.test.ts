// The stories260K golden suite on the WebGPU backend in Node: Dawn (npm `webgpu`) on
// whatever adapter it finds; without a GPU, SwiftShader from Debian's chromium (DESIGN §2).
import { webgpuBackend } from '@shardmesh/engine'
import { goldenSuite } from './suite.ts'

process.env.VK_ICD_FILENAMES ??= '/usr/lib/chromium/vk_swiftshader_icd.json'

goldenSuite('webgpu', async () => webgpuBackend())
