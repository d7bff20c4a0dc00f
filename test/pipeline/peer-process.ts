/**
 * A stage peer in its own process: starts a libp2p node and a stage server for one range of a
 * model, prints `{"peerId", "addrs", "layers"}` as one JSON line, and runs until stdin closes
 * or SIGTERM. Usage: node test/pipeline/peer-process.ts MODEL L0 L1 [U0,U1]
 * (MODEL: a checkpoint path, or `synthetic:PRESET`; U0,U1: units, strategy attention_feedforward).
 */
import { cpuBackend } from '@shardmesh/engine'
import type { Backend, BatchItem, Stage } from '@shardmesh/engine'
import { createMeshPeer } from '@shardmesh/mesh'
import { syntheticModel, SYNTHETIC_PRESETS } from '@shardmesh/model'
import type { Checkpoint } from '@shardmesh/model'
import { loadModel } from '@shardmesh/model/node'
import { Endpoint, StageServer } from '@shardmesh/pipeline'

/**
 * A peer that lies (level critical's tests): with SHARDMESH_TEST_CORRUPT_FROM=P it adds
 * SHARDMESH_TEST_CORRUPT_BY (default 0.01) to the first element of every hidden state it emits
 * for positions >= P. -1: honest.
 */
function lying (backend: Backend, from: number, by: number): Backend {
  if (from < 0) return backend
  return {
    name: backend.name,
    createStage: async init => {
      const stage = await backend.createStage(init)
      return {
        config: stage.config,
        layers: stage.layers,
        units: stage.units,
        embed: stage.embed,
        head: stage.head,
        createSession: () => stage.createSession(),
        close: async () => { await stage.close() },
        forwardBatch: async (items: BatchItem[]) => {
          const out = await stage.forwardBatch(items)
          out.forEach((r, i) => {
            const { position } = items[i].input
            if (r.status === 'fulfilled' && r.value.hidden !== undefined && position >= from) r.value.hidden[0] += by
          })
          return out
        }
      } satisfies Stage
    }
  }
}

const [modelArg, l0, l1, unitsArg] = process.argv.slice(2)
const model: Checkpoint = modelArg.startsWith('synthetic:')
  ? syntheticModel(SYNTHETIC_PRESETS[modelArg.slice(10) as keyof typeof SYNTHETIC_PRESETS])
  : await loadModel(modelArg)
const layers: [number, number] = [Number(l0), Number(l1)]
const node = await createMeshPeer({ listen: ['/ip4/127.0.0.1/tcp/0'], meshId: `pipeline-peer-${process.ppid}` })
const server = new StageServer({ endpoint: new Endpoint(node), backend: lying(cpuBackend(), Number(process.env.SHARDMESH_TEST_CORRUPT_FROM ?? -1), Number(process.env.SHARDMESH_TEST_CORRUPT_BY ?? 0.01)), config: model.config, tensors: model.tensors })
await server.start()
const units = unitsArg === undefined ? undefined : unitsArg.split(',').map(Number) as [number, number]
await server.serve(layers, { units })
process.stdout.write(JSON.stringify({ peerId: node.peerId.toString(), addrs: node.getMultiaddrs().map(String), layers, ...(units === undefined ? {} : { units }) }) + '\n')

let stopping = false
async function shutdown (): Promise<void> {
  if (stopping) return
  stopping = true
  await server.stop()
  await node.stop()
  process.exit(0)
}
process.on('SIGTERM', () => { void shutdown() })
process.stdin.on('end', () => { void shutdown() })
process.stdin.resume()
