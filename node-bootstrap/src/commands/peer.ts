import { totalmem } from 'node:os'
import { cpuBackend } from '@shardmesh/engine'
import { createMeshPeer } from '@shardmesh/mesh'
import { syntheticModel, SYNTHETIC_PRESETS } from '@shardmesh/model'
import { CliError } from '../errors.ts'
import { logger } from '../log.ts'
import type { Capabilities, MeshNode } from '@shardmesh/mesh'

type Values = Record<string, string | boolean | undefined>

const BENCH_MODEL = 'tiny-gqa2'
const BENCH_PROMPT = 8
const BENCH_DECODE = 32

/**
 * What this Node peer offers: the runtime, the CPU backend, a memory budget and the decode
 * tokens/s of a short real CPU engine run (tiny synthetic model, all layers, greedy).
 */
export async function measureCapabilities (memoryBytes: number): Promise<Capabilities> {
  const model = syntheticModel(SYNTHETIC_PRESETS[BENCH_MODEL])
  const stage = await cpuBackend().createStage({ config: model.config, layers: [0, model.config.nLayers], tensors: model.tensors })
  try {
    const session = stage.createSession()
    const prompt = Array.from({ length: BENCH_PROMPT }, (_, i) => 1 + i)
    let out = await session.forward({ position: 0, tokens: prompt }, { sample: { temperature: 0 } })
    const t0 = performance.now()
    for (let p = BENCH_PROMPT; p < BENCH_PROMPT + BENCH_DECODE; p++) out = await session.forward({ position: p, tokens: [out.token!] }, { sample: { temperature: 0 } })
    const seconds = (performance.now() - t0) / 1000
    return {
      runtime: { name: 'node', version: process.versions.node },
      backend: { kind: 'cpu' },
      memoryBytes,
      throughput: { model: BENCH_MODEL, decodeTokensPerSecond: Math.round(BENCH_DECODE / seconds * 10) / 10 }
    }
  } finally {
    await stage.close()
  }
}

/** `--listen a,b` → multiaddrs, or the default. */
export function listenAddrs (values: Values, fallback: string[]): string[] {
  const raw = values.listen
  if (raw === undefined || raw === true) return fallback
  const addrs = String(raw).split(',').map(s => s.trim()).filter(s => s.length > 0)
  if (addrs.length === 0 || !addrs.every(a => a.startsWith('/'))) throw new CliError(`--listen takes comma-separated multiaddrs, got "${String(raw)}"`)
  return addrs
}

export function memoryBudget (values: Values): number {
  if (values.memory === undefined) return Math.floor(totalmem() / 2)
  const mb = Number(values.memory)
  if (!Number.isFinite(mb) || mb <= 0) throw new CliError(`--memory must be a number of MiB > 0, got "${String(values.memory)}"`)
  return Math.floor(mb * 1024 * 1024)
}

/** Log role changes and member status changes; resolve on SIGINT/SIGTERM after a clean stop. */
export async function runUntilSignal (node: MeshNode, cleanup: () => Promise<void> = async () => {}): Promise<void> {
  const log = logger('mesh')
  const mesh = node.services.mesh
  mesh.addEventListener('coordinator', e => { log.info(`term ${e.detail.term}: coordinator ${e.detail.coordinator ?? 'none'} (this peer: ${e.detail.role})`) })
  mesh.addEventListener('member', e => { log.debug(`member ${e.detail.peerId} ${e.detail.status} (${e.detail.reason})`) })
  mesh.addEventListener('error', e => { log.warn(`internal error: ${e.detail.message}`) })
  await new Promise<void>(resolve => {
    process.once('SIGINT', () => { resolve() })
    process.once('SIGTERM', () => { resolve() })
  })
  log.info('stopping')
  await cleanup()
  await node.stop()
}

export async function peerCommand (values: Values): Promise<void> {
  if (typeof values.bootstrap !== 'string' || values.bootstrap.trim() === '') throw new CliError('--bootstrap MULTIADDR is required (printed by `shardmesh start`)')
  const bootstrap = values.bootstrap.split(',').map(s => s.trim()).filter(s => s.length > 0)
  if (!bootstrap.every(a => a.startsWith('/') && a.includes('/p2p/'))) throw new CliError(`--bootstrap takes multiaddrs ending in /p2p/<peer id>, got "${values.bootstrap}"`)
  const listen = listenAddrs(values, ['/ip4/127.0.0.1/tcp/0', '/ip4/127.0.0.1/tcp/0/ws'])
  const capabilities = await measureCapabilities(memoryBudget(values))
  const node = await createMeshPeer({ bootstrap, listen, capabilities, meshId: typeof values['mesh-id'] === 'string' ? values['mesh-id'] : undefined })
  const addrs = node.getMultiaddrs().map(String)
  if (values.json === true) {
    process.stdout.write(JSON.stringify({ peerId: node.peerId.toString(), addrs, capabilities }) + '\n')
  } else {
    process.stdout.write(`shardmesh peer ${node.peerId.toString()}\n${addrs.map(a => `  ${a}`).join('\n')}\n` +
      `  cpu decode ${capabilities.throughput?.decodeTokensPerSecond ?? 0} tok/s (${BENCH_MODEL})\n`)
  }
  await runUntilSignal(node)
}
