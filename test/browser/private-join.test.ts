// A private mesh joined from a browser (issue 13): `shardmesh start --private` prints the peer
// page URL with a join token in its fragment; tabs that open it trade the token and their own
// peer id for an operator-signed ticket (POST /api/admission/join), join the private mesh
// presenting it, get stages and serve stories260K with the golden tokens. A tab whose URL
// carries a wrong token is refused and never becomes a member.
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTokenizer } from '@shardmesh/model'
import { loadModel } from '@shardmesh/model/node'
import { storiesDir } from '../fixtures.ts'
import { PeerMesh, waitFor } from './peer-mesh.ts'

const dir = storiesDir()
const gguf = join(dir, 'stories260K.gguf')
const golden = JSON.parse(await readFile(join(dir, 'golden.json'), 'utf8')) as { cases: Array<{ tag: string, prompt: string, generated_tokens: number[] }> }
const once = golden.cases.find(c => c.tag === 'main' && c.prompt === 'Once upon a time')!
const tokenizer = createTokenizer((await loadModel(gguf)).tokenizer!)
const N = 16

describe('a private mesh joined from the peer page URL\'s join token', () => {
  const m = new PeerMesh()
  beforeAll(async () => { await m.start({ model: gguf, tabs: 2, ftLevel: 'low', private: true }) }, 180_000)
  afterAll(async () => { await m.stop() }, 60_000)

  it('the tabs are admitted, serve the plan\'s stages and give the golden tokens', async () => {
    expect(m.boot.page).toMatch(/#join=[A-Za-z0-9_-]{43}$/)
    const mesh = await waitFor('a 2-stage plan served by both tabs', async () => {
      const v = await m.mesh()
      const statuses = await Promise.all(m.tabs.map(async t => await m.status(t)))
      if (statuses.some(s => s.state === 'error')) throw new Error(`a tab failed: ${statuses.map(s => s.error).join('; ')}`)
      return v.plan?.stages.length === 2 && statuses.every(s => s.state === 'serving') ? v : undefined
    }, 150_000, async () => await m.describe())
    const ids = await Promise.all(m.tabs.map(async t => (await m.status(t)).peerId))
    expect(new Set(mesh.plan!.stages.map(s => s.primary))).toEqual(new Set(ids))
    const model = (await m.http('/v1/models')).data[0].id as string
    const r = await m.http('/v1/completions', { model, prompt: once.prompt, max_tokens: N, temperature: 0 })
    expect(r.choices[0].text).toBe(tokenizer.decode(once.generated_tokens.slice(0, N), { prev: tokenizer.encode(once.prompt).at(-1) }))
  }, 200_000)

  it('a tab with a wrong join token is refused and never becomes a member', async () => {
    const url = new URL(m.boot.page)
    url.hash = 'join=' + 'A'.repeat(43)
    const page = await m.browser!.newPage()
    try {
      await page.goto(url.href)
      const status = await waitFor('the refused tab to report its error', async () => {
        const s = await page.evaluate(() => (globalThis as any).shardmeshPeer?.status()).catch(() => undefined)
        return s?.state === 'error' ? s : undefined
      }, 60_000)
      expect(status.error).toMatch(/join token was refused \(HTTP 403/)
      const members = (await m.mesh()).peers.map(p => p.peerId)
      expect(members).toHaveLength(3) // the bootstrap and the two admitted tabs
    } finally {
      await page.close()
    }
  }, 90_000)
})
