import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { CliError } from './errors.ts'

type PrivateKey = ReturnType<typeof privateKeyFromProtobuf>

/**
 * `--key FILE`: the peer's identity, kept across restarts (a restarted peer returns with its peer
 * id, so the mesh sees the same member come back). Read when the file exists; otherwise a new
 * Ed25519 key is written there (libp2p protobuf encoding, mode 0600).
 */
export async function loadOrCreateKey (file: string): Promise<PrivateKey> {
  try {
    return privateKeyFromProtobuf(await readFile(file))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new CliError(`--key ${file}: not a libp2p private key (${(err as Error).message})`)
  }
  const key = await generateKeyPair('Ed25519')
  await mkdir(dirname(file), { recursive: true })
  try {
    await writeFile(file, privateKeyToProtobuf(key), { mode: 0o600, flag: 'wx' })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return await loadOrCreateKey(file) // another process wrote it first
    throw err
  }
  return key
}
