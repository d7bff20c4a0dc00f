// Browser bundles: the kernels of shaders/ imported as text. Bundlers need a text loader
// for .wgsl (esbuild: `loader: { '.wgsl': 'text' }`; Vite: see packages/engine/README.md).
// Node reads the same files with fs in shaders.ts. webgpu-shaders.test.ts checks that this
// list names every file in shaders/.
import add from '../../../../shaders/add.wgsl'
import attention from '../../../../shaders/attention.wgsl'
import dequantBf16 from '../../../../shaders/dequant_bf16.wgsl'
import dequantF16 from '../../../../shaders/dequant_f16.wgsl'
import dequantF32 from '../../../../shaders/dequant_f32.wgsl'
import dequantQ40 from '../../../../shaders/dequant_q4_0.wgsl'
import dequantQ80 from '../../../../shaders/dequant_q8_0.wgsl'
import embedding from '../../../../shaders/embedding.wgsl'
import matmul from '../../../../shaders/matmul.wgsl'
import mean from '../../../../shaders/mean.wgsl'
import rmsnorm from '../../../../shaders/rmsnorm.wgsl'
import rope from '../../../../shaders/rope.wgsl'
import softmax from '../../../../shaders/softmax.wgsl'
import swiglu from '../../../../shaders/swiglu.wgsl'
import topk from '../../../../shaders/topk.wgsl'

const sources: Record<string, string> = {
  'add.wgsl': add,
  'attention.wgsl': attention,
  'dequant_bf16.wgsl': dequantBf16,
  'dequant_f16.wgsl': dequantF16,
  'dequant_f32.wgsl': dequantF32,
  'dequant_q4_0.wgsl': dequantQ40,
  'dequant_q8_0.wgsl': dequantQ80,
  'embedding.wgsl': embedding,
  'matmul.wgsl': matmul,
  'mean.wgsl': mean,
  'rmsnorm.wgsl': rmsnorm,
  'rope.wgsl': rope,
  'softmax.wgsl': softmax,
  'swiglu.wgsl': swiglu,
  'topk.wgsl': topk
}

export function shaderSource (file: string): string {
  const text = sources[file]
  if (text === undefined) throw new RangeError(`no shader ${file} in the bundle`)
  return text
}

/** Files this bundle carries (checked against shaders/ by the tests). */
export const bundledShaders = Object.keys(sources)
