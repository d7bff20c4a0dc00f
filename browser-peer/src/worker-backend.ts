// A Backend whose stages and sessions are proxies of the ones in the compute Worker
// (compute-worker.ts): the pipeline's stage server calls it as any backend, the forward passes
// run off the main thread. Session positions are mirrored from the Worker's replies.
import { NonFiniteActivationError, StageClosedError, StageConfigError, StageInputError, WebGpuError, stageLabel, stageShape } from '@shardmesh/engine'
import type { Backend, BatchItem, ForwardOptions, Stage, StageInit, StageInput, StageOutput, StageSession } from '@shardmesh/engine'
import type { Tensor } from '@shardmesh/model'
import type { Request, Response, WireError, WireOptions, WireResult } from './worker-protocol.ts'

/** Rebuild the engine's error classes, so callers that check `name` or `instanceof` still can. */
function toError (e: WireError): Error {
  let err: Error
  switch (e.name) {
    case 'StageInputError': err = new StageInputError(e.message); break
    case 'StageConfigError': err = new StageConfigError(e.message); break
    case 'StageClosedError': err = new StageClosedError(e.message); break
    case 'NonFiniteActivationError': err = new NonFiniteActivationError(e.message); break
    case 'WebGpuError': err = new WebGpuError((e.reason ?? 'validation') as ConstructorParameters<typeof WebGpuError>[0], e.message); break
    default: err = new Error(e.message); err.name = e.name
  }
  return err
}

function wireOptions (options: ForwardOptions = {}): WireOptions {
  const { signal: _signal, ...rest } = options // an AbortSignal does not cross to the Worker
  return rest
}

/** The tensors a stage reads: from a Map as given (weights' stageTensors), copied out of shared part buffers. */
function tensorList (tensors: StageInit['tensors']): Tensor[] {
  if (!(tensors instanceof Map)) throw new StageConfigError('the worker backend needs the stage tensors as a Map')
  return [...(tensors as Map<string, Tensor>).values()].map(t => ({ ...t, data: t.data.slice() }))
}

export interface WorkerBackend extends Backend {
  terminate: () => void
}

/** Start the compute Worker with the `webgpu` or `cpu` backend. */
export async function workerBackend (kind: 'webgpu' | 'cpu'): Promise<WorkerBackend> {
  const worker = new Worker(new URL('./compute-worker.ts', import.meta.url), { type: 'module', name: 'shardmesh-compute' })
  let next = 1
  const pending = new Map<number, { resolve: (v: unknown) => void, reject: (e: Error) => void }>()
  let dead: Error | undefined
  worker.onmessage = (e: MessageEvent<Response>) => {
    const p = pending.get(e.data.id)
    pending.delete(e.data.id)
    if (p === undefined) return
    if (e.data.ok) p.resolve(e.data.value)
    else p.reject(toError(e.data.error))
  }
  worker.onerror = (e: ErrorEvent) => {
    dead = new Error(`the compute worker failed: ${e.message}`)
    for (const p of pending.values()) p.reject(dead)
    pending.clear()
  }
  const call = async <T>(req: Request, transfer: Transferable[] = []): Promise<T> => {
    if (dead !== undefined) throw dead
    const id = next++
    return await new Promise<T>((resolve, reject) => {
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject })
      worker.postMessage({ id, req }, transfer)
    })
  }
  const name = await call<string>({ op: 'init', backend: kind })
  let stageIds = 0
  let sessionIds = 0

  return {
    name,
    terminate: () => { worker.terminate() },
    async createStage (init: StageInit): Promise<Stage> {
      const stageId = ++stageIds
      const tensors = tensorList(init.tensors)
      await call({ op: 'createStage', stage: stageId, init: { ...init, tensors } }, tensors.map(t => t.data.buffer as ArrayBuffer))
      const ids = new WeakMap<StageSession, number>()
      const positions = new Map<number, number>()
      let closed = false
      const settle = (session: number, r: WireResult): StageOutput => {
        positions.set(session, r.position)
        if (!r.ok) throw toError(r.error)
        return r.output
      }
      const shape = stageShape(init)
      const stage: Stage = {
        config: init.config,
        layers: shape.layers,
        units: shape.units,
        embed: shape.embed,
        head: shape.head,
        createSession (): StageSession {
          if (closed) throw new StageClosedError(`stage ${stageLabel(shape.units)} is closed`)
          const id = ++sessionIds
          positions.set(id, 0)
          const created = call({ op: 'createSession', stage: stageId, session: id })
          const session: StageSession = {
            get position () { return positions.get(id) ?? 0 },
            async forward (input: StageInput, options?: ForwardOptions): Promise<StageOutput> {
              options?.signal?.throwIfAborted()
              await created
              const r = await call<WireResult>({ op: 'forward', session: id, input, options: wireOptions(options) })
              return settle(id, r)
            },
            truncate (position: number): void {
              const held = positions.get(id) ?? 0
              if (position < 0 || position > held) throw new StageInputError(`cannot truncate to ${position}: the session holds ${held} positions`)
              positions.set(id, position)
              void created.then(async () => await call({ op: 'truncate', session: id, position })).catch(() => {})
            },
            close (): void {
              positions.delete(id)
              void created.then(async () => await call({ op: 'closeSession', session: id })).catch(() => {})
            }
          }
          ids.set(session, id)
          return session
        },
        async forwardBatch (items: BatchItem[]): Promise<Array<PromiseSettledResult<StageOutput>>> {
          const wire = items.map(it => ({ session: ids.get(it.session), input: it.input, options: wireOptions(it.options) }))
          if (wire.some(w => w.session === undefined)) throw new StageInputError('a batch item\'s session is not a session of this stage')
          const results = await call<WireResult[]>({ op: 'forwardBatch', stage: stageId, items: wire as Array<{ session: number, input: StageInput, options: WireOptions }> })
          return results.map((r, i) => {
            try {
              return { status: 'fulfilled', value: settle(wire[i].session!, r) }
            } catch (err) {
              return { status: 'rejected', reason: err }
            }
          })
        },
        async close (): Promise<void> {
          closed = true
          await call({ op: 'closeStage', stage: stageId })
        }
      }
      return stage
    }
  }
}
