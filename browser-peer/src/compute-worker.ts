// The compute Worker: the engine (WebGPU, or CPU without an adapter) runs here so the page's
// main thread — libp2p, gossip heartbeats, the stage server's streams — never waits on a
// forward pass. Stages and sessions live here; the page holds proxies (worker-backend.ts).
import { cpuBackend, webgpuBackend } from '@shardmesh/engine'
import type { Backend, Stage, StageOutput, StageSession } from '@shardmesh/engine'
import type { Tensor } from '@shardmesh/model'
import type { Request, Response, WireError, WireResult } from './worker-protocol.ts'

let backend: Backend | undefined
const stages = new Map<number, Stage>()
const sessions = new Map<number, StageSession>()

function wireError (err: unknown): WireError {
  const e = err as Error & { reason?: string }
  return { name: e.name ?? 'Error', message: e.message ?? String(err), ...(typeof e.reason === 'string' ? { reason: e.reason } : {}) }
}

function need<T> (map: Map<number, T>, id: number, what: string): T {
  const v = map.get(id)
  if (v === undefined) throw new Error(`no ${what} ${id} in the compute worker`)
  return v
}

/**
 * The output with its arrays copied into their own buffers, and those buffers (transferred,
 * not cloned again). A backend's arrays may be views of memory it keeps (a WebAssembly memory).
 */
function detach (out: StageOutput): { output: StageOutput, buffers: ArrayBuffer[] } {
  const output: StageOutput = { ...out, hidden: out.hidden?.slice(), logits: out.logits?.slice() }
  if (output.hidden === undefined) delete output.hidden
  if (output.logits === undefined) delete output.logits
  return { output, buffers: [output.hidden?.buffer, output.logits?.buffer].filter((b): b is ArrayBuffer => b instanceof ArrayBuffer) }
}

async function handle (req: Request): Promise<{ value: unknown, transfer?: Transferable[] }> {
  switch (req.op) {
    case 'init':
      backend = req.backend === 'webgpu' ? webgpuBackend() : cpuBackend()
      return { value: backend.name }
    case 'createStage': {
      const tensors = new Map<string, Tensor>(req.init.tensors.map(t => [t.name, t]))
      stages.set(req.stage, await backend!.createStage({ ...req.init, tensors }))
      return { value: null }
    }
    case 'createSession':
      sessions.set(req.session, need(stages, req.stage, 'stage').createSession())
      return { value: null }
    case 'forward': {
      const s = need(sessions, req.session, 'session')
      try {
        const { output, buffers } = detach(await s.forward(req.input, req.options))
        return { value: { ok: true, output, position: s.position } satisfies WireResult, transfer: buffers }
      } catch (err) {
        return { value: { ok: false, error: wireError(err), position: s.position } satisfies WireResult }
      }
    }
    case 'forwardBatch': {
      const stage = need(stages, req.stage, 'stage')
      const items = req.items.map(it => ({ session: need(sessions, it.session, 'session'), input: it.input, options: it.options }))
      const settled = await stage.forwardBatch(items)
      const transfer: ArrayBuffer[] = []
      const out: WireResult[] = settled.map((r, i) => {
        if (r.status === 'rejected') return { ok: false, error: wireError(r.reason), position: items[i].session.position }
        const { output, buffers } = detach(r.value)
        transfer.push(...buffers)
        return { ok: true, output, position: items[i].session.position }
      })
      return { value: out, transfer }
    }
    case 'truncate':
      need(sessions, req.session, 'session').truncate(req.position)
      return { value: null }
    case 'closeSession':
      sessions.get(req.session)?.close()
      sessions.delete(req.session)
      return { value: null }
    case 'closeStage':
      await stages.get(req.stage)?.close()
      stages.delete(req.stage)
      return { value: null }
  }
}

self.onmessage = (e: MessageEvent<{ id: number, req: Request }>) => {
  const { id, req } = e.data
  handle(req).then(({ value, transfer }) => {
    (self as unknown as Worker).postMessage({ id, ok: true, value } satisfies Response, transfer ?? [])
  }, (err: unknown) => {
    (self as unknown as Worker).postMessage({ id, ok: false, error: wireError(err) } satisfies Response)
  })
}
