import type { ComponentBackend } from '../components/types.ts'
import type { Backend, Stage, StageInit } from '../types.ts'
import { webgpuComponentStages } from './components.ts'
import { requestContext } from './context.ts'
import type { GpuContext, GpuContextInit, GpuInfo } from './context.ts'
import { WebGpuStage } from './stage.ts'

export type WebGpuBackendInit = GpuContextInit

export interface WebGpuBackend extends Backend {
  /** The adapter and limits the backend runs on (requests the device if not yet done). */
  info: () => Promise<GpuInfo>
  createEncoderStage: ComponentBackend['createEncoderStage']
  createDecoderStage: ComponentBackend['createDecoderStage']
}

/** Backends created without a device or options share one device per process (or page). */
let shared: Promise<GpuContext> | undefined

async function sharedContext (): Promise<GpuContext> {
  if (shared !== undefined) {
    const ctx = await shared.catch(() => undefined)
    if (ctx !== undefined && !ctx.lost) return ctx
  }
  shared = requestContext()
  shared.catch(() => { shared = undefined })
  return await shared
}

/**
 * The WebGPU backend: the same stages as the CPU backend (models made of parts too: encoder
 * stages, decoder stages with cross-attention), computed by the kernels in `shaders/`, in
 * Node (Dawn, npm `webgpu`) and in browsers (`navigator.gpu`).
 */
export function webgpuBackend (init: WebGpuBackendInit = {}): WebGpuBackend {
  const own = Object.keys(init).length > 0
  let ctx: Promise<GpuContext> | undefined
  const context = async (): Promise<GpuContext> => {
    if (!own) return await sharedContext()
    ctx ??= requestContext(init)
    return await ctx
  }
  return {
    name: 'webgpu',
    async createStage (stageInit: StageInit): Promise<Stage> {
      return await WebGpuStage.create(await context(), stageInit)
    },
    async info (): Promise<GpuInfo> {
      return (await context()).info
    },
    ...webgpuComponentStages(context)
  }
}
