// Where the page finds the mesh: `?bootstrap=MULTIADDR[,MULTIADDR]` in its URL, else the
// `peer.json` that `shardmesh start` serves beside the page (its own WebSocket addresses).
import { joinTokenOf } from './join.ts'

export interface PageConfig {
  bootstrap: string[]
  /** Dial ws:// and private addresses (a local or test mesh). */
  allowLocalDial: boolean
  /** Compute in a dedicated Worker; `?worker=0` computes on the main thread. @default true */
  worker: boolean
  /**
   * What runs the page's timers: `worker` (default), the clock Worker that a hidden tab's
   * throttling does not reach (worker-clock.ts); `?clock=page` keeps the page's own.
   */
  clock: 'worker' | 'page'
  /** `?backend=cpu` forces the CPU backend even with an adapter. */
  backend?: 'cpu' | 'webgpu'
  /** Mesh name (`shardmesh start --mesh-id`); `?mesh=` overrides. @default the default mesh */
  meshId?: string
  /** A private mesh's join token (`#join=TOKEN`): traded for this tab's admission ticket (join.ts). */
  join?: string
}

export async function pageConfig (location: Location): Promise<PageConfig> {
  const q = new URLSearchParams(location.search)
  let bootstrap = (q.get('bootstrap') ?? '').split(',').map(s => s.trim()).filter(s => s.length > 0)
  let allowLocalDial: boolean | undefined = q.has('local') ? q.get('local') !== '0' : undefined
  let meshId = q.get('mesh') ?? undefined
  if (bootstrap.length === 0) {
    const res = await fetch(new URL('peer.json', location.href))
    if (!res.ok) throw new Error(`no ?bootstrap= in the URL and peer.json answered HTTP ${res.status}: open the URL that \`shardmesh start\` prints`)
    const json = await res.json() as { bootstrap?: string[], allowLocalDial?: boolean, meshId?: string }
    bootstrap = json.bootstrap ?? []
    allowLocalDial ??= json.allowLocalDial
    meshId ??= json.meshId
  }
  if (bootstrap.length === 0) throw new Error('the bootstrap has no WebSocket address a browser can dial (start it with a /ws listen address)')
  const backend = q.get('backend')
  return {
    bootstrap,
    // a page served from a loopback or private host is a local deployment
    allowLocalDial: allowLocalDial ?? /^(127\.|localhost$|10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.)/.test(location.hostname),
    meshId,
    join: joinTokenOf(location),
    worker: q.get('worker') !== '0',
    clock: q.get('clock') === 'page' ? 'page' : 'worker',
    backend: backend === 'cpu' || backend === 'webgpu' ? backend : undefined
  }
}
