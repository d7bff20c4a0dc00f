import type { TensorSource } from '../types.ts'
import type { EncoderComponent } from '../components/types.ts'
import { layerParts } from '../stage-shape.ts'
import type { StageShape } from '../stage-shape.ts'
import type { GpuContext } from './context.ts'
import { uploadMatrix } from './matrix.ts'
import type { GpuMatrix } from './matrix.ts'
import { destroyStageWeights, uploadVector } from './weights.ts'
import type { GpuLayerWeights } from './weights.ts'

/** An encoder stage's weights on the GPU, uploaded once when the stage is created. */
export interface GpuEncoderWeights {
  /** Token embedding `(vocab, dim)`, or the image's patch embedding `(dim, patchSize²·channels)`. */
  embedding?: GpuMatrix
  layers: GpuLayerWeights[]
  norm?: GPUBuffer // (dim) f32: the final norm
  proj?: GpuMatrix // (embedDim, dim), towers only
}

/**
 * Uploads what a stage of `component` over `shape` runs, by component name
 * (`image.layers.0.wq`, …). The caller has checked every name and shape
 * (`checkStageTensors`), so errors name the component's tensors.
 */
export function uploadEncoderWeights (ctx: GpuContext, component: EncoderComponent, shape: Pick<StageShape, 'units' | 'embed' | 'head'>, tensors: TensorSource): GpuEncoderWeights {
  const p = component + '.'
  const matrix = (name: string): GpuMatrix => uploadMatrix(ctx, tensors.get(p + name)!)
  const vector = (name: string): GPUBuffer => uploadVector(ctx, tensors.get(p + name)!)
  const weights: GpuEncoderWeights = {
    layers: layerParts(shape.units).map(({ layer, attention, ffn }) => {
      const l = `layers.${layer}.`
      const w: GpuLayerWeights = { layer }
      if (attention) w.attention = { norm: vector(l + 'attn_norm'), wq: matrix(l + 'wq'), wk: matrix(l + 'wk'), wv: matrix(l + 'wv'), wo: matrix(l + 'wo') }
      if (ffn) w.ffn = { norm: vector(l + 'ffn_norm'), w1: matrix(l + 'w1'), w2: matrix(l + 'w2'), w3: matrix(l + 'w3') }
      return w
    })
  }
  if (shape.embed) weights.embedding = matrix(component === 'image' ? 'patch_embed' : 'embed')
  if (shape.head) {
    weights.norm = vector('final_norm')
    if (component !== 'encoder') weights.proj = matrix('proj')
  }
  return weights
}

export function destroyEncoderWeights (w: GpuEncoderWeights): void {
  destroyStageWeights({ embedding: w.embedding, layers: w.layers, norm: w.norm, output: w.proj, bytes: 0 })
}
