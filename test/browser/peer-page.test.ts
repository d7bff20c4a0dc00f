// The browser peer page end to end (DESIGN §9 tier 4; issue 11): `shardmesh start` serves the
// Vite-built page at `/`; headless Chromium tabs open that URL inside a test-made network
// namespace, join the mesh (WebSockets to the bootstrap, direct WebRTC between peers), detect
// their WebGPU adapter (SwiftShader), receive a stage from the coordinator, fetch its layers
// over Helia and serve it with the WebGPU backend (in the page's compute Worker). stories260K
// through the HTTP API and through a tab's chat box gives the golden tokens; reload, Leave, a
// mixed pipeline of one Node peer and two tabs, a tab closed mid-generation (at --ft-level
// medium the spare tab takes over by replay, same tokens), and the bootstrap killed (the tabs
// elect a coordinator and go on serving).
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTokenizer } from '@shardmesh/model'
import type { Tokenizer } from '@shardmesh/model'
import { loadModel } from '@shardmesh/model/node'
import { storiesDir } from '../fixtures.ts'
import { PeerMesh, waitFor } from './peer-mesh.ts'
import type { Tab } from './peer-mesh.ts'

const dir = storiesDir()
const gguf = join(dir, 'stories260K.gguf')
const golden = JSON.parse(await readFile(join(dir, 'golden.json'), 'utf8')) as { cases: Array<{ tag: string, prompt: string, generated_tokens: number[] }> }
const once = golden.cases.find(c => c.tag === 'main' && c.prompt === 'Once upon a time')!
const dog = golden.cases.find(c => c.tag === 'main' && c.prompt === 'The dog')!
const tokenizer: Tokenizer = createTokenizer((await loadModel(gguf)).tokenizer!)
/** The golden continuation of `c` as text (the API decodes after the prompt's last token). */
const want = (c: typeof once, n: number): string => tokenizer.decode(c.generated_tokens.slice(0, n), { prev: tokenizer.encode(c.prompt).at(-1) })
const N = 24

/** Every tab serves a stage of the plan, with the plan's stages all held. */
async function allServing (m: PeerMesh, stages: number, figure = false): Promise<void> {
  await waitFor(`a ${stages}-stage plan served by every tab`, async () => {
    const mesh = await m.mesh()
    if (mesh.plan?.stages.length !== stages) return undefined
    const statuses = (await Promise.all(m.tabs.map(async t => await m.status(t)))).filter(s => s.state !== 'left')
    return statuses.every(s => s.state === 'serving') ? true : undefined
  }, 150_000, async () => await m.describe())
  // a figure for the report, not an assertion (the machine is shared)
  if (figure) console.log(`${m.tabs.length} tab(s): opening the page → every tab serving its stage: ${Math.round(performance.now() - m.openedAt)} ms`)
}

describe('three tabs open the peer page and serve stories260K on WebGPU', () => {
  const m = new PeerMesh()
  // --ft-level low: every peer serves a stage (medium would keep one of three as a spare)
  beforeAll(async () => { await m.start({ model: gguf, tabs: 3, ftLevel: 'low' }) }, 180_000)
  afterAll(async () => { await m.stop() }, 60_000)

  it('each tab joins, finds the SwiftShader WebGPU adapter and serves its own stage of a 3-stage plan', async () => {
    await m.screenshot(m.tabs[0], 'peer-joining')
    await allServing(m, 3, true)
    const statuses = await Promise.all(m.tabs.map(async t => await m.status(t)))
    // what a tab holds reaches the bootstrap in its next announcement (gossip): wait for that
    const holds = (mesh: Awaited<ReturnType<typeof m.mesh>>, s: (typeof statuses)[number]): boolean =>
      mesh.peers.find(x => x.peerId === s.peerId)?.layers.some(([a, b]) => a <= s.stage!.range[0] && b >= s.stage!.range[1]) === true
    const mesh = await waitFor('every tab\'s layers announced', async () => {
      const v = await m.mesh()
      return statuses.every(s => holds(v, s)) ? v : undefined
    }, 30_000, async () => await m.describe())
    expect(new Set(mesh.plan!.stages.map(s => s.primary))).toEqual(new Set(statuses.map(s => s.peerId)))
    for (const s of statuses) {
      expect(s.backend).toBe('webgpu')
      expect(s.computeIn).toBe('worker')
      expect(s.detected?.adapter?.fallback).toBe(true) // SwiftShader: no GPU on this machine
      expect(s.benchTokensPerSecond).toBeGreaterThan(0)
      // the tab follows the coordinator the bootstrap sees (which peer won is not the point here)
      expect(s.coordinator).toBe(mesh.coordinator)
      expect(s.coordinator).not.toBeNull()
      expect(s.fetch.partsDone).toBe(s.fetch.parts) // its layers came over Helia
      expect(s.fetch.parts).toBeGreaterThan(0)
      // what /api/mesh says about the tab: a chrome peer on the webgpu backend holding its range
      const p = mesh.peers.find(x => x.peerId === s.peerId)!
      expect(p).toMatchObject({ runtime: { name: 'chrome' }, backend: { kind: 'webgpu' }, status: 'alive' })
      // (tabs of one browser profile share the IndexedDB block cache, so a tab may hold more)
      const [l0, l1] = s.stage!.range
      expect(p.layers.some(([a, b]) => a <= l0 && b >= l1), JSON.stringify(p.layers)).toBe(true)
    }
    // the stages cover the layers in order
    const ranges = mesh.plan!.stages.map(s => s.range)
    expect(ranges[0][0]).toBe(0)
    expect(ranges.at(-1)![1]).toBe(5)
    for (let i = 1; i < ranges.length; i++) expect(ranges[i][0]).toBe(ranges[i - 1][1])
    await m.screenshot(m.tabs[0], 'peer-serving')
  }, 200_000)

  it('a /v1/completions prompt at temperature 0 gives the golden tokens, computed by the tabs', async () => {
    const before = await Promise.all(m.tabs.map(async t => (await m.status(t)).compute.tokens))
    const model = (await m.http('/v1/models')).data[0].id as string
    const r = await m.http('/v1/completions', { model, prompt: once.prompt, max_tokens: N, temperature: 0 })
    expect(r.choices[0].text).toBe(want(once, N))
    expect(r.usage).toMatchObject({ prompt_tokens: 5, completion_tokens: N })
    // every tab's stage computed the prompt and each generated position — hidden tabs too
    // (only the tab in front is visible)
    const after = await Promise.all(m.tabs.map(async t => await m.status(t)))
    after.forEach((s, i) => { expect(s.compute.tokens - before[i]).toBeGreaterThanOrEqual(5 + N - 1) })
    expect(after.filter(s => s.visibility === 'hidden').length).toBeGreaterThanOrEqual(2)
  }, 120_000)

  it('the chat box makes the tab the head: tokens stream in and equal the golden ones', async () => {
    const tab: Tab = m.tabs[1]
    await tab.page.bringToFront() // input events reach the tab in front
    await tab.page.type('#prompt', dog.prompt)
    await tab.page.click('#send')
    const text = await waitFor('the chat to finish', async () => {
      const [busy, out] = await tab.page.evaluate(() => [(document.getElementById('send') as HTMLButtonElement).disabled, document.getElementById('chat-output')!.textContent ?? ''] as const)
      return !busy && out.length > dog.prompt.length ? out : undefined
    }, 120_000, async () => await m.describe())
    // the page asks for 64 tokens at temperature 0
    expect(text).toBe(dog.prompt + want(dog, 64))
    await m.screenshot(tab, 'peer-chat')
  }, 150_000)

  it('a reload comes back as the same peer (its key is kept in sessionStorage) and the mesh serves again', async () => {
    const tab = m.tabs[0]
    const before = await m.status(tab)
    await tab.page.reload()
    await tab.page.waitForFunction('globalThis.shardmeshPeer !== undefined', { timeout: 30_000 })
    const after = await waitFor('the reloaded tab back in the mesh', async () => {
      const s = await m.status(tab)
      return s.state === 'serving' || s.state === 'standby' ? s : undefined
    }, 90_000, async () => await m.describe())
    expect(after.peerId).toBe(before.peerId)
    // while it reloaded the coordinator may have re-planned around it (it then stands by)
    const mesh = await waitFor('every stage of the plan served', async () => {
      const v = await m.mesh()
      const serving = await Promise.all(m.tabs.map(async t => await m.status(t)))
      return v.plan !== null && v.plan.stages.every(st => serving.some(x => x.peerId === st.primary && x.state === 'serving')) ? v : undefined
    }, 90_000, async () => await m.describe())
    expect(mesh.peers.find(p => p.peerId === before.peerId)?.status).toBe('alive')
    const model = (await m.http('/v1/models')).data[0].id as string
    const r = await m.http('/v1/completions', { model, prompt: once.prompt, max_tokens: N, temperature: 0 })
    expect(r.choices[0].text).toBe(want(once, N))
  }, 200_000)

  it('Leave: the tab stops, the mesh re-plans without it and the same request again gives the golden tokens', async () => {
    const leaving = m.tabs[2]
    const gone = (await m.status(leaving)).peerId!
    await leaving.page.bringToFront()
    await leaving.page.click('#leave')
    await waitFor('the tab to leave', async () => (await m.status(leaving)).state === 'left' ? true : undefined, 30_000, async () => await m.describe())
    const mesh = await waitFor('a plan without the tab that left', async () => {
      const v = await m.mesh()
      return v.plan !== null && v.plan.stages.every(s => s.primary !== gone) && v.peers.find(p => p.peerId === gone)?.status !== 'alive' ? v : undefined
    }, 60_000, async () => await m.describe())
    expect(mesh.plan!.stages.map(s => s.primary).every(p => m.boot.peerId !== p)).toBe(true) // the tabs serve, not the bootstrap
    // the two tabs left both serve (--ft-level low uses every peer); the one reloaded before
    // took its stage's layers from the IndexedDB cache, not the network
    await allServing(m, 2)
    const reloaded = await m.status(m.tabs[0])
    expect(reloaded.fetch.receivedBytes).toBeGreaterThan(0)
    expect(reloaded.fetch.cachedBytes).toBe(reloaded.fetch.receivedBytes)
    const model = (await m.http('/v1/models')).data[0].id as string
    const r = await m.http('/v1/completions', { model, prompt: once.prompt, max_tokens: N, temperature: 0 })
    expect(r.choices[0].text).toBe(want(once, N))
    await m.screenshot(m.tabs[0], 'peer-after-leave')
  }, 150_000)
})

describe('a mixed pipeline: one Node peer and two tabs', () => {
  const m = new PeerMesh()
  beforeAll(async () => { await m.start({ model: gguf, tabs: 2, nodePeers: 1, ftLevel: 'low' }) }, 180_000)
  afterAll(async () => { await m.stop() }, 60_000)

  it('plans a stage on each of the three peers and gives the golden tokens', async () => {
    await allServing(m, 3, true)
    const mesh = await m.mesh()
    const primaries = mesh.plan!.stages.map(s => mesh.peers.find(p => p.peerId === s.primary)!)
    expect(primaries.map(p => p.runtime.name).sort()).toEqual(['chrome', 'chrome', 'node'])
    expect(primaries.filter(p => p.runtime.name === 'chrome').every(p => p.backend.kind === 'webgpu')).toBe(true)
    const model = (await m.http('/v1/models')).data[0].id as string
    const r = await m.http('/v1/completions', { model, prompt: once.prompt, max_tokens: N, temperature: 0 })
    expect(r.choices[0].text).toBe(want(once, N))
    for (const t of m.tabs) expect((await m.status(t)).compute.tokens).toBeGreaterThanOrEqual(5 + N - 1)
  }, 200_000)

  it('a tab closed mid-generation: the request gives the golden tokens or a clear error, and after the re-plan the same request gives them', async () => {
    const LONG = 120
    const mesh = await m.mesh()
    const statuses = await Promise.all(m.tabs.map(async t => await m.status(t)))
    const victim = m.tabs[statuses.findIndex(s => s.peerId === mesh.plan!.stages.filter(x => statuses.some(y => y.peerId === x.primary)).at(-1)!.primary)]
    const gone = (await m.status(victim)).peerId!
    const before = (await m.status(victim)).compute.tokens
    const model = (await m.http('/v1/models')).data[0].id as string
    const request = m.http('/v1/completions', { model, prompt: dog.prompt, max_tokens: LONG, temperature: 0 })
      .then(r => ({ text: r.choices[0].text as string }), (err: Error) => ({ error: err.message }))
    await waitFor('the request to be under way on the tab', async () => (await m.status(victim)).compute.tokens >= before + 20 ? true : undefined, 60_000, async () => await m.describe())
    await victim.page.close()
    // the head recovers the session (DESIGN §4: same tokens), or fails it with an HTTP error
    // that says why; it never hangs and never returns other tokens
    const first = await request
    console.log(`tab closed mid-generation: ${'text' in first ? 'recovered, golden tokens' : `failed: ${first.error.slice(-300)}`}`)
    if ('text' in first) expect(first.text).toBe(want(dog, LONG))
    else expect(first.error).toMatch(/\b50[0-9] \{"error":\{"message":"[^"]+/)
    await waitFor('a plan without the closed tab', async () => {
      const v = await m.mesh()
      return v.plan !== null && v.plan.stages.every(s => s.primary !== gone) ? true : undefined
    }, 60_000, async () => await m.describe())
    const again = await m.http('/v1/completions', { model, prompt: dog.prompt, max_tokens: LONG, temperature: 0 })
    expect(again.choices[0].text).toBe(want(dog, LONG))
  }, 200_000)
})

describe('the bootstrap dies: the tabs elect a coordinator among themselves and a tab\'s chat box still serves', () => {
  const m = new PeerMesh()
  // one tab opened with ?backend=cpu: the CPU (WebAssembly) backend a tab uses without an adapter
  beforeAll(async () => { await m.start({ model: gguf, tabs: 2, ftLevel: 'low', query: i => i === 1 ? '?backend=cpu' : '' }) }, 180_000)
  afterAll(async () => { await m.stop() }, 60_000)

  it('after SIGKILL of `shardmesh start`, a tab is coordinator and the chat gives the golden tokens over the tabs alone (one on WebGPU, one on the CPU backend)', async () => {
    await allServing(m, 2)
    const before = await m.status(m.tabs[0])
    expect(before.coordinator).toBe(m.boot.peerId)
    const backends = await Promise.all(m.tabs.map(async t => (await m.status(t)).backend))
    expect(backends.sort()).toEqual(['cpu', 'webgpu'])
    const view = await m.mesh()
    expect(view.peers.filter(p => p.runtime.name === 'chrome').map(p => p.backend.kind).sort()).toEqual(['cpu', 'webgpu'])
    await m.killBootstrap()
    const ids = await Promise.all(m.tabs.map(async t => (await m.status(t)).peerId!))
    const after = await waitFor('a tab elected coordinator by both tabs', async () => {
      const all = await Promise.all(m.tabs.map(async t => await m.status(t)))
      const c = all[0].coordinator
      return c !== null && ids.includes(c) && all.every(x => x.coordinator === c && x.term === all[0].term && x.term > before.term) ? all : undefined
    }, 60_000, async () => JSON.stringify(await Promise.all(m.tabs.map(async t => await m.status(t)))))
    expect(after.filter(x => x.role === 'coordinator')).toHaveLength(1)
    const tab = m.tabs[1]
    await tab.page.bringToFront()
    const r = await tab.page.evaluate(async (p: string) => await (globalThis as unknown as { shardmeshPeer: { chat: (p: string, n: number) => Promise<{ tokens: number[], text: string }> } }).shardmeshPeer.chat(p, 32), once.prompt)
    expect(r.tokens).toEqual(once.generated_tokens.slice(0, 32))
    await m.screenshot(tab, 'peer-bootstrap-gone')
  }, 150_000)
})

describe('fault tolerance medium: three tabs, two stages and a spare', () => {
  const m = new PeerMesh()
  beforeAll(async () => { await m.start({ model: gguf, tabs: 3, ftLevel: 'medium' }) }, 180_000)
  afterAll(async () => { await m.stop() }, 60_000)

  it('a stage tab closed mid-generation is replaced by the spare and the tokens are the golden ones', async () => {
    const LONG = 120
    const mesh = await waitFor('a 2-stage plan served by tabs, with a spare', async () => {
      const v = await m.mesh()
      const statuses = await Promise.all(m.tabs.map(async t => await m.status(t)))
      return v.plan?.stages.length === 2 && v.plan.stages.every(s => statuses.some(x => x.peerId === s.primary && x.state === 'serving')) ? v : undefined
    }, 120_000, async () => await m.describe())
    const statuses = await Promise.all(m.tabs.map(async t => await m.status(t)))
    const victim = m.tabs[statuses.findIndex(s => s.peerId === mesh.plan!.stages[1].primary)]
    const before = (await m.status(victim)).compute.tokens
    const model = (await m.http('/v1/models')).data[0].id as string
    const request = m.http('/v1/completions', { model, prompt: dog.prompt, max_tokens: LONG, temperature: 0 })
    await waitFor('the request to be under way on the tab', async () => (await m.status(victim)).compute.tokens >= before + 20 ? true : undefined, 60_000, async () => await m.describe())
    await victim.page.close()
    const r = await request
    expect(r.choices[0].text).toBe(want(dog, LONG))
    const after = await m.mesh()
    expect(after.recoveries?.length ?? 0).toBeGreaterThan(0)
    console.log(`recovery: ${JSON.stringify(after.recoveries?.at(-1))}`)
    const spare = m.tabs.find(t => t !== victim && !t.page.isClosed() && statuses[m.tabs.indexOf(t)].stage === undefined)
    if (spare !== undefined) await m.screenshot(spare, 'peer-after-recovery')
  }, 200_000)
})

describe('fault tolerance medium: a Chromium process killed mid-generation', () => {
  const m = new PeerMesh()
  // three tabs, each in its own Chromium: two stages and a spare
  beforeAll(async () => { await m.start({ model: gguf, tabs: 3, browsers: 3, ftLevel: 'medium' }) }, 180_000)
  afterAll(async () => { await m.stop() }, 60_000)

  it('the spare replaces the killed browser\'s stage and the tokens are the golden ones', async () => {
    const LONG = 120
    const mesh = await waitFor('a 2-stage plan served by tabs, with a spare', async () => {
      const v = await m.mesh()
      const statuses = await Promise.all(m.tabs.map(async t => await m.status(t)))
      return v.plan?.stages.length === 2 && v.plan.stages.every(s => statuses.some(x => x.peerId === s.primary && x.state === 'serving')) ? v : undefined
    }, 120_000, async () => await m.describe())
    const statuses = await Promise.all(m.tabs.map(async t => await m.status(t)))
    const i = statuses.findIndex(s => s.peerId === mesh.plan!.stages[0].primary)
    const before = statuses[i].compute.tokens
    const model = (await m.http('/v1/models')).data[0].id as string
    const request = m.http('/v1/completions', { model, prompt: once.prompt, max_tokens: LONG, temperature: 0 })
    await waitFor('the request to be under way on the tab', async () => (await m.status(m.tabs[i])).compute.tokens >= before + 20 ? true : undefined, 60_000, async () => await m.describe())
    m.tabs[i].browser.process()!.kill('SIGKILL') // the tab's whole browser, as a crash
    const r = await request
    expect(r.choices[0].text).toBe(want(once, LONG))
    const last = (await m.mesh()).recoveries?.at(-1) as { failed: string[], ok: boolean } | undefined
    expect(last).toMatchObject({ failed: [statuses[i].peerId], ok: true })
    console.log(`recovery after a killed Chromium: ${JSON.stringify(last)}`)
  }, 200_000)
})
