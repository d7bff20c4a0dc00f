/**
 * WebGPU flag values (from the spec), so the engine needs no `GPUBufferUsage` global: Dawn
 * in Node only installs those globals on request.
 */
export const BufferUsage = {
  MAP_READ: 0x1,
  COPY_SRC: 0x4,
  COPY_DST: 0x8,
  UNIFORM: 0x40,
  STORAGE: 0x80
} as const

export const MapMode = { READ: 0x1 } as const

export const ShaderStage = { COMPUTE: 0x4 } as const

/** Size of one uniform parameter block; every kernel's Params fits in 64 words. */
export const PARAM_BLOCK_BYTES = 256

/** Where Debian's chromium package puts SwiftShader's Vulkan driver manifest (DESIGN §2). */
export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json'
