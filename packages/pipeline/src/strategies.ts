import type { ModelConfig } from '@shardmesh/model'
import type { PartSizes, PlanInput, PlanMember, StrategyName } from './plan-types.ts'

/** How a strategy sees one peer: relative speed, memory budget, and why. */
export interface PeerProfile {
  peerId: string
  /** Relative decode speed; a stage's cost is its work divided by this. */
  speed: number
  /** Weight bytes it may hold; Infinity when the peer declared no budget (memoryBytes 0). */
  capacity: number
  /** Excluded from this plan (with the reason). */
  excluded?: string
  basis: string
}

/** Backend priors when nothing was measured: a real GPU is worth several CPU cores. */
const BACKEND_PRIOR = { cpu: 1, webgpu: 4, 'webgpu-fallback': 0.5 }
/** Browser affinity priors (WebGPU maturity and JS speed per browser family). */
const BROWSER_PRIOR: Record<string, number> = { node: 1, chrome: 1, edge: 1, firefox: 0.6, safari: 0.5 }
/** Above this many weight bytes a model counts as large, where GPU peers matter more. */
const LARGE_MODEL_BYTES = 256 * 1024 * 1024

/** Samples a peer's history needs before its speed replaces the throughput it announced. */
export const HISTORY_MIN_SAMPLES = 5

type History = PlanInput['history']

/** Decode tokens/s: the peer's history when it has enough samples, else what it announced. */
function measured (m: PlanMember, history: History): { tput: number, from: string } | undefined {
  const h = history?.get(m.peerId)
  if (h !== undefined && h.samples >= HISTORY_MIN_SAMPLES && h.speed > 0) return { tput: h.speed, from: `history (${h.samples} samples)` }
  const t = m.capabilities.throughput
  return t !== undefined && t.decodeTokensPerSecond > 0 ? { tput: t.decodeTokensPerSecond, from: 'measured' } : undefined
}

function capacityOf (m: PlanMember): number {
  return m.capabilities.memoryBytes > 0 ? m.capabilities.memoryBytes : Infinity
}

function isFallback (m: PlanMember): boolean {
  const a = m.capabilities.backend.adapter
  return a !== undefined && (a.isFallbackAdapter === 'true' || /swiftshader/i.test(Object.values(a).join(' ')))
}

function backendPrior (m: PlanMember): [number, string] {
  const b = m.capabilities.backend.kind
  if (b === 'webgpu') return isFallback(m) ? [BACKEND_PRIOR['webgpu-fallback'], 'webgpu on a CPU-emulated adapter'] : [BACKEND_PRIOR.webgpu, 'webgpu adapter']
  return [BACKEND_PRIOR.cpu, 'cpu backend']
}

/** `balanced`'s view of a member: its measured speed (history, else what it announced), else unit speed. */
export function measuredProfile (m: PlanMember, history?: History): PeerProfile {
  const speed = measured(m, history)
  const capacity = capacityOf(m)
  return speed !== undefined
    ? { peerId: m.peerId, speed: speed.tput, capacity, basis: `${speed.from} ${speed.tput.toFixed(1)} tok/s` }
    : { peerId: m.peerId, speed: 1, capacity, basis: 'no measurement, unit speed' }
}

/** Each strategy's view of the members (before partitioning). */
export function profiles (strategy: StrategyName, members: PlanMember[], config: ModelConfig, sizes: PartSizes, history?: History): PeerProfile[] {
  const totalBytes = sizes.embedding + sizes.head + sizes.layers.reduce((a, b) => a + b, 0)
  return members.map(m => {
    const capacity = capacityOf(m)
    const speed = measured(m, history)
    const tput = speed?.tput
    const from = speed?.from ?? 'measured'
    switch (strategy) {
      case 'layer':
      case 'custom':
        return { peerId: m.peerId, speed: 1, capacity, basis: 'equal share' }
      case 'balanced':
      case 'attention_feedforward':
      case 'component':
      case 'hybrid':
        return measuredProfile(m, history)
      case 'hardware_aware': {
        const [prior, why] = backendPrior(m)
        const p: PeerProfile = tput !== undefined
          ? { peerId: m.peerId, speed: tput, capacity, basis: `${from} ${tput.toFixed(1)} tok/s on ${why}` }
          : { peerId: m.peerId, speed: prior, capacity, basis: `prior ${prior} for ${why}` }
        const binding = m.capabilities.backend.limits?.maxStorageBufferBindingSize
        // the engine splits matrices by rows, so one row must fit a storage binding
        const rowBytes = 4 * Math.max(config.dim, config.hiddenDim, config.nHeads * config.headDim)
        if (m.capabilities.backend.kind === 'webgpu' && binding !== undefined && binding < rowBytes) p.excluded = `maxStorageBufferBindingSize ${binding} < one weight row (${rowBytes} bytes)`
        return p
      }
      case 'browser_optimized': {
        if (tput !== undefined) return { peerId: m.peerId, speed: tput, capacity, basis: `${from} ${tput.toFixed(1)} tok/s overrides the browser prior` }
        const runtime = m.capabilities.runtime.name
        const browser = BROWSER_PRIOR[runtime] ?? 0.3
        const gpu = m.capabilities.backend.kind === 'webgpu' && !isFallback(m)
        const modelFactor = gpu ? (totalBytes > LARGE_MODEL_BYTES ? 4 : 2) : 1
        return { peerId: m.peerId, speed: browser * modelFactor, capacity, basis: `prior ${runtime} ×${browser}${gpu ? `, webgpu ×${modelFactor} for a ${totalBytes > LARGE_MODEL_BYTES ? 'large' : 'small'} model` : ''}` }
      }
    }
  })
}
