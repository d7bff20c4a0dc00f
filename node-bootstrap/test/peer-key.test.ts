import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { loadOrCreateKey } from '../src/peer-key.ts'

const dirs: string[] = []
afterEach(async () => { for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true }) })

describe('peer --key FILE', () => {
  it('creates a key once (mode 0600, missing folders made) and returns the same identity after', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'shardmesh-key-'))
    dirs.push(dir)
    const file = join(dir, 'nested', 'peer-0.key')
    const a = await loadOrCreateKey(file)
    expect(a.type).toBe('Ed25519')
    expect((await stat(file)).mode & 0o777).toBe(0o600)
    const b = await loadOrCreateKey(file)
    expect(b.publicKey.toString()).toBe(a.publicKey.toString())
    expect(b.equals(a)).toBe(true)
    // another file, another identity
    expect((await loadOrCreateKey(join(dir, 'peer-1.key'))).publicKey.toString()).not.toBe(a.publicKey.toString())
  })

  it('refuses a file that is not a libp2p private key, naming it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'shardmesh-key-'))
    dirs.push(dir)
    const file = join(dir, 'bad.key')
    await writeFile(file, 'not a key')
    await expect(loadOrCreateKey(file)).rejects.toMatchObject({ name: 'CliError', message: expect.stringContaining(`--key ${file}: not a libp2p private key`) })
  })
})
