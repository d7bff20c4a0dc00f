import { CorruptCheckpointError, MissingFieldError } from '../errors.ts'
import { tensorByteLength } from '../quant.ts'
import type { ModelConfig, Tensor } from '../types.ts'

/** Every tensor a Llama checkpoint with `config` must have, by normalized name, with its shape. */
export function llamaShapes (config: ModelConfig): Map<string, number[]> {
  const { dim, hiddenDim, nHeads, nKvHeads, headDim, vocabSize } = config
  const shapes = new Map<string, number[]>([['tok_embeddings', [vocabSize, dim]]])
  for (let i = 0; i < config.nLayers; i++) {
    shapes.set(`layers.${i}.attention_norm`, [dim])
    shapes.set(`layers.${i}.wq`, [nHeads * headDim, dim])
    shapes.set(`layers.${i}.wk`, [nKvHeads * headDim, dim])
    shapes.set(`layers.${i}.wv`, [nKvHeads * headDim, dim])
    shapes.set(`layers.${i}.wo`, [dim, nHeads * headDim])
    shapes.set(`layers.${i}.ffn_norm`, [dim])
    shapes.set(`layers.${i}.w1`, [hiddenDim, dim])
    shapes.set(`layers.${i}.w2`, [dim, hiddenDim])
    shapes.set(`layers.${i}.w3`, [hiddenDim, dim])
  }
  shapes.set('norm', [dim])
  if (!config.tiedEmbeddings) shapes.set('output', [vocabSize, dim])
  return shapes
}

/**
 * Check that `tensors` are exactly the ones `config` implies, with the right shapes and byte
 * lengths. Missing → MissingFieldError; extra, misshapen or mis-sized → CorruptCheckpointError.
 */
export function checkLlamaTensors (tensors: Map<string, Tensor>, config: ModelConfig, source: string): void {
  // a claimed layer count beyond the tensors present is refused before any per-layer work (2^53 layers would never finish)
  if (config.nLayers > tensors.size) {
    throw new MissingFieldError(`${source}: ${config.nLayers} layers need ${9 * config.nLayers} layer tensors, the checkpoint has ${tensors.size} tensors in all`)
  }
  const shapes = llamaShapes(config)
  const missing = [...shapes.keys()].filter((name) => !tensors.has(name))
  if (missing.length > 0) {
    throw new MissingFieldError(`${source}: missing tensor${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`)
  }
  for (const [name, t] of tensors) {
    const want = shapes.get(name)
    if (want === undefined) {
      const why = name === 'output' ? ' (config says the embeddings are tied)' : ''
      throw new CorruptCheckpointError(`${source}: unexpected tensor ${name}${why}`)
    }
    if (t.shape.length !== want.length || t.shape.some((d, i) => d !== want[i])) {
      throw new CorruptCheckpointError(`${source}: tensor ${name} has shape [${t.shape.join(', ')}], expected [${want.join(', ')}]`)
    }
    const bytes = tensorByteLength(t.dtype, t.shape, `${source}: tensor ${name}`)
    if (t.data.byteLength !== bytes) {
      throw new CorruptCheckpointError(`${source}: tensor ${name} (${t.dtype} [${t.shape.join(', ')}]) needs ${bytes} bytes, has ${t.data.byteLength}`)
    }
  }
}
