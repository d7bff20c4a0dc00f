/**
 * A stage of one part of a model of several parts, in its own process: a libp2p node, the
 * component protocol (`ComponentEndpoint`) serving `[l0, l1)` of the part, and for an
 * encoder–decoder's decoder a stage server whose stages cross-attend to the memories heads
 * hand over. Prints `{"peerId", "addrs"}` as one JSON line and runs until stdin closes.
 * Usage: node test/pipeline/component-peer.ts two_tower|encoder_decoder COMPONENT L0 L1 [U0,U1]
 * (the synthetic models of @shardmesh/model, default seeds: every process builds the same weights).
 * SHARDMESH_COMPONENT_BACKEND=webgpu computes on WebGPU (Dawn; VK_ICD_FILENAMES for SwiftShader).
 */
import { cpuBackend, decoderTensorSource, webgpuBackend } from '@shardmesh/engine'
import type { EncoderComponent } from '@shardmesh/engine'
import { createMeshPeer } from '@shardmesh/mesh'
import { decoderModelConfig, syntheticEncoderDecoder, syntheticTwoTower } from '@shardmesh/model'
import type { EncoderDecoderConfig } from '@shardmesh/model'
import { ComponentEndpoint, Endpoint, StageServer } from '@shardmesh/pipeline'

const [kind, component, l0, l1, unitsArg] = process.argv.slice(2)
const model = kind === 'two_tower' ? syntheticTwoTower() : syntheticEncoderDecoder()
const layers: [number, number] = [Number(l0), Number(l1)]
const units = unitsArg === undefined ? undefined : unitsArg.split(',').map(Number) as [number, number]
const backend = process.env.SHARDMESH_COMPONENT_BACKEND === 'webgpu' ? webgpuBackend() : cpuBackend()
const node = await createMeshPeer({ listen: ['/ip4/127.0.0.1/tcp/0'], meshId: `component-peer-${process.ppid}` })
const components = new ComponentEndpoint({
  node,
  model: model.config.name,
  load: async (part, span) => await backend.createEncoderStage({ model: model.config, component: part as EncoderComponent, ...span, tensors: model.tensors })
})
await components.start()
let server: StageServer | undefined
if (component === 'decoder') {
  const config = model.config as EncoderDecoderConfig
  server = new StageServer({ endpoint: new Endpoint(node), backend, config: decoderModelConfig(config), tensors: decoderTensorSource(model.tensors), crossAttention: { dim: config.encoder.dim }, memory: s => components.memory(s) })
  await server.start()
  await server.serve(layers, { units })
} else {
  await components.serve(component, layers, units)
}
process.stdout.write(JSON.stringify({ peerId: node.peerId.toString(), addrs: node.getMultiaddrs().map(String), component, layers, ...(units === undefined ? {} : { units }), backend: backend.name }) + '\n')

let stopping = false
async function shutdown (): Promise<void> {
  if (stopping) return
  stopping = true
  await server?.stop()
  await components.stop()
  await node.stop()
  process.exit(0)
}
process.stdin.on('end', () => { void shutdown() })
process.stdin.resume()
process.on('SIGTERM', () => { void shutdown() })
