import { WebGpuError } from '../errors.ts'
import { BufferUsage, PARAM_BLOCK_BYTES, ShaderStage } from './constants.ts'
import { requestAdapter, runtime } from './gpu.ts'
import { preprocess } from './preprocess.ts'
import type { Defines } from './preprocess.ts'
import { shaderSource } from './shaders.ts'
import { chooseTuning } from './tuning.ts'
import type { Tuning } from './tuning.ts'

export interface GpuContextInit {
  /** Use this device instead of requesting one (tests pass their own to destroy it). */
  device?: GPUDevice
  /** @default 'high-performance' */
  powerPreference?: GPUPowerPreference
  /** Override workgroup and tile sizes chosen from the adapter. */
  tuning?: Partial<Tuning>
  /**
   * Largest tensor bound as one storage buffer; larger weights are split by rows.
   * @default the device's maxStorageBufferBindingSize
   */
  maxBindingBytes?: number
}

/** What the backend runs on, for logs and benchmarks. */
export interface GpuInfo {
  runtime: 'node' | 'browser'
  vendor: string
  architecture: string
  description: string
  /** A software (CPU-emulated) adapter such as SwiftShader. */
  fallback: boolean
  subgroups: boolean
  shaderF16: boolean
  timestampQuery: boolean
  maxBindingBytes: number
}

/** How a kernel sees each binding, in binding order. */
export type BindingKind = 'uniform' | 'read' | 'storage'

/**
 * One device with its kernels: pipelines cached by (kernel, defines, constants), bind group
 * layouts by signature, device loss watched. Shared by every stage of a backend.
 */
export class GpuContext {
  readonly device: GPUDevice
  readonly info: GpuInfo
  readonly tuning: Tuning
  readonly maxBindingBytes: number
  readonly maxWorkgroups: number
  private lostInfo: GPUDeviceLostInfo | undefined
  private readonly pipelines = new Map<string, GPUComputePipeline>()
  private readonly layouts = new Map<string, GPUBindGroupLayout>()

  constructor (device: GPUDevice, adapterInfo: GPUAdapterInfo | undefined, init: GpuContextInit) {
    this.device = device
    const limits = device.limits
    const subgroups = device.features.has('subgroups')
    const fallback = (adapterInfo as { isFallbackAdapter?: boolean } | undefined)?.isFallbackAdapter === true ||
      /swiftshader|llvmpipe|software/i.test(`${adapterInfo?.vendor ?? ''} ${adapterInfo?.architecture ?? ''} ${adapterInfo?.description ?? ''}`)
    this.tuning = chooseTuning({
      maxInvocations: limits.maxComputeInvocationsPerWorkgroup,
      maxWorkgroupStorage: limits.maxComputeWorkgroupStorageSize,
      subgroups,
      subgroupMinSize: (adapterInfo as { subgroupMinSize?: number } | undefined)?.subgroupMinSize,
      fallback
    }, init.tuning)
    this.maxBindingBytes = Math.min(init.maxBindingBytes ?? Infinity, limits.maxStorageBufferBindingSize, limits.maxBufferSize)
    this.maxWorkgroups = limits.maxComputeWorkgroupsPerDimension
    this.info = {
      runtime,
      vendor: adapterInfo?.vendor ?? '',
      architecture: adapterInfo?.architecture ?? '',
      description: adapterInfo?.description ?? '',
      fallback,
      subgroups,
      shaderF16: device.features.has('shader-f16'),
      timestampQuery: device.features.has('timestamp-query'),
      maxBindingBytes: this.maxBindingBytes
    }
    void device.lost.then(info => { this.lostInfo = info })
  }

  /** Throws WebGpuError('device-lost') once the device is gone. */
  checkAlive (): void {
    if (this.lostInfo !== undefined) {
      throw new WebGpuError('device-lost', `the WebGPU device was lost (${this.lostInfo.reason}): ${this.lostInfo.message || 'no message'}`)
    }
  }

  get lost (): boolean {
    return this.lostInfo !== undefined
  }

  layout (kinds: BindingKind[]): GPUBindGroupLayout {
    const key = kinds.join(',')
    let layout = this.layouts.get(key)
    if (layout === undefined) {
      layout = this.device.createBindGroupLayout({
        label: key,
        entries: kinds.map((kind, binding) => ({
          binding,
          visibility: ShaderStage.COMPUTE,
          buffer: { type: kind === 'uniform' ? 'uniform' : kind === 'read' ? 'read-only-storage' : 'storage' }
        }))
      })
      this.layouts.set(key, layout)
    }
    return layout
  }

  /** The pipeline of `shaders/<file>` preprocessed with `defines`, specialized with `constants`. */
  pipeline (file: string, kinds: BindingKind[], defines: Defines, constants: Record<string, number>): GPUComputePipeline {
    const key = `${file}|${kinds.join(',')}|${JSON.stringify(defines)}|${JSON.stringify(constants)}`
    let pipeline = this.pipelines.get(key)
    if (pipeline === undefined) {
      const code = this.source(file, defines)
      pipeline = this.device.createComputePipeline({
        label: key,
        layout: this.device.createPipelineLayout({ bindGroupLayouts: [this.layout(kinds)] }),
        compute: { module: this.device.createShaderModule({ label: file, code }), entryPoint: 'main', constants }
      })
      this.pipelines.set(key, pipeline)
    }
    return pipeline
  }

  /** Preprocessed WGSL of a kernel. */
  source (file: string, defines: Defines): string {
    return preprocess(file, defines, shaderSource)
  }

  buffer (bytes: number, usage: number, label: string): GPUBuffer {
    const size = Math.max(16, Math.ceil(bytes / 16) * 16)
    if (size > this.device.limits.maxBufferSize) {
      throw new WebGpuError('limit', `${label}: a buffer of ${bytes} bytes exceeds the device's maxBufferSize ${this.device.limits.maxBufferSize}`)
    }
    return this.device.createBuffer({ size, usage, label })
  }

  storage (bytes: number, label: string): GPUBuffer {
    if (bytes > this.maxBindingBytes) {
      throw new WebGpuError('limit', `${label}: ${bytes} bytes exceed the largest storage binding (${this.maxBindingBytes} bytes)`)
    }
    return this.buffer(bytes, BufferUsage.STORAGE | BufferUsage.COPY_DST | BufferUsage.COPY_SRC, label)
  }

  bindGroup (kinds: BindingKind[], resources: Array<GPUBuffer | GPUBufferBinding>, label: string): GPUBindGroup {
    return this.device.createBindGroup({
      label,
      layout: this.layout(kinds),
      entries: resources.map((r, binding) => ({ binding, resource: 'size' in r && 'mapState' in r ? { buffer: r } : r as GPUBufferBinding }))
    })
  }

  /** Workgroup counts (x, y) covering `groups` one-dimensional workgroups within the per-dimension limit. */
  grid (groups: number): [number, number] {
    if (groups <= this.maxWorkgroups) return [Math.max(1, groups), 1]
    const y = Math.ceil(groups / this.maxWorkgroups)
    return [Math.ceil(groups / y), y]
  }

  /**
   * Run `work` inside validation and out-of-memory error scopes; a captured error becomes a
   * WebGpuError, and so does any failure once the device is lost. Other errors (bad shapes,
   * limits) pass through as they are.
   */
  async guarded<T> (what: string, work: () => Promise<T> | T): Promise<T> {
    this.checkAlive()
    const { device } = this
    device.pushErrorScope('out-of-memory')
    device.pushErrorScope('validation')
    let result: T
    try {
      result = await work()
    } catch (err) {
      void device.popErrorScope().catch(() => {})
      void device.popErrorScope().catch(() => {})
      // a map or submit that fails because the device just went away reports the loss
      await Promise.race([device.lost, new Promise(resolve => setTimeout(resolve, 20))])
      this.checkAlive()
      throw err
    }
    const [validation, memory] = await Promise.all([device.popErrorScope(), device.popErrorScope()]).catch(() => [null, null])
    this.checkAlive()
    if (memory !== null) throw new WebGpuError('out-of-memory', `${what}: ${memory.message}`)
    if (validation !== null) throw new WebGpuError('validation', `${what}: ${validation.message}`)
    return result
  }
}

/** Size of one parameter block, at least the device's uniform offset alignment. */
export function paramBlockBytes (device: GPUDevice): number {
  return Math.max(PARAM_BLOCK_BYTES, device.limits.minUniformBufferOffsetAlignment)
}

/**
 * A device with the limits the engine needs (the adapter's largest storage bindings and
 * buffers) and subgroups when the adapter has them.
 */
export async function requestContext (init: GpuContextInit = {}): Promise<GpuContext> {
  if (init.device !== undefined) {
    return new GpuContext(init.device, (init.device as { adapterInfo?: GPUAdapterInfo }).adapterInfo, init)
  }
  const adapter = await requestAdapter({ powerPreference: init.powerPreference ?? 'high-performance' })
  const features: GPUFeatureName[] = []
  if (adapter.features.has('subgroups')) features.push('subgroups')
  if (adapter.features.has('timestamp-query')) features.push('timestamp-query')
  const limits = adapter.limits
  let device: GPUDevice
  try {
    device = await adapter.requestDevice({
      requiredFeatures: features,
      requiredLimits: {
        maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
        maxBufferSize: limits.maxBufferSize,
        maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
        maxComputeInvocationsPerWorkgroup: limits.maxComputeInvocationsPerWorkgroup,
        maxComputeWorkgroupSizeX: limits.maxComputeWorkgroupSizeX
      }
    })
  } catch (err) {
    throw new WebGpuError('no-adapter', `requestDevice failed on ${adapter.info.vendor} ${adapter.info.description}: ${(err as Error).message}`, { cause: err })
  }
  return new GpuContext(device, adapter.info, init)
}
