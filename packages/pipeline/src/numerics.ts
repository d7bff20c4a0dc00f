import type { Capabilities } from '@shardmesh/mesh'

/**
 * The numerics a peer computes with, as a class name: two peers of one class give the same
 * bits for the same input (so one may take over a running session from the other), peers of
 * different classes may not.
 *
 * - `cpu`: every CPU backend (WebAssembly SIMD, summation order fixed by the engine) is bit-exact
 *   with every other, in Node and in tabs.
 * - `webgpu <vendor>/<architecture>[ subgroups]`: the kernels' summation order follows the tuning
 *   chosen from the adapter (matmul lanes, subgroups, workgroup sizes) and the hardware's float
 *   behaviour, so WebGPU peers match only on the same kind of adapter. SwiftShader in Node (Dawn)
 *   and in Chromium is one class (`webgpu google/swiftshader subgroups`), bit-identical.
 *
 * CPU and WebGPU agree within ~1e-4 of the largest logit, and give the same greedy tokens on
 * stories260K, but they are not bit-exact, so they are different classes: a pipeline may mix
 * them (each stage keeps its class for a session's life), a stage may not change class mid-session.
 */
export function numericsOf (backend: Capabilities['backend']): string {
  if (backend.kind === 'cpu') return 'cpu'
  const a = backend.adapter ?? {}
  return `webgpu ${a.vendor ?? '?'}/${a.architecture ?? '?'}${a.subgroups === 'true' ? ' subgroups' : ''}`
}
