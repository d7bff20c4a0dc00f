import { firstNonFinite } from '../activations.ts'
import { NonFiniteActivationError, StageInputError } from '../errors.ts'

export interface FusedTowers {
  /** The text embedding scaled to unit length (f32). */
  textEmbedding: Float32Array
  /** The image embedding scaled to unit length (f32). */
  imageEmbedding: Float32Array
  /** Cosine of the two embeddings, in float64 from the raw vectors, clamped to [-1, 1]. */
  similarity: number
}

/**
 * The two towers' embeddings (each stage's `embedding`, not normalized) fused as CLIP does:
 * both L2-normalized, and their cosine similarity. The embeddings must have the same length,
 * be finite and not zero.
 */
export function fuseTowers (text: Float32Array, image: Float32Array): FusedTowers {
  if (text.length === 0 || text.length !== image.length) {
    throw new StageInputError(`tower embeddings must have one non-zero length; got text ${text.length} and image ${image.length}`)
  }
  const norm = (x: Float32Array, what: string): number => {
    const bad = firstNonFinite(x)
    if (bad >= 0) throw new NonFiniteActivationError(`${what} embedding value ${bad} is ${x[bad]}`)
    let ss = 0
    for (let i = 0; i < x.length; i++) ss += x[i] * x[i]
    if (ss === 0) throw new StageInputError(`the ${what} embedding is zero; it has no direction`)
    return Math.sqrt(ss)
  }
  const nt = norm(text, 'text')
  const ni = norm(image, 'image')
  let dot = 0
  for (let i = 0; i < text.length; i++) dot += text[i] * image[i]
  return {
    textEmbedding: text.map(v => v / nt),
    imageEmbedding: image.map(v => v / ni),
    similarity: Math.min(1, Math.max(-1, dot / (nt * ni)))
  }
}
