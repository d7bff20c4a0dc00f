import { execFile, spawn } from 'node:child_process'
import type { ChildProcess, SpawnOptions } from 'node:child_process'
import { chmod, mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

/** The address on the namespace's veth end: WebRTC needs a non-loopback interface for ICE. */
export const NETNS_ADDRESS = '10.231.1.2'

/**
 * A network namespace made by a test (DESIGN §2): loopback up, a veth pair with both ends
 * inside, 10.231.1.2/24 on one end and a default route through it. Traffic between
 * processes inside stays inside; nothing reaches the machine's interfaces.
 */
export interface Netns {
  name: string
  address: string
  /** Spawn a command inside the namespace. */
  spawn: (command: string, args: string[], options?: SpawnOptions) => ChildProcess
  /** Run a command inside the namespace and return its stdout. */
  exec: (command: string, args: string[]) => Promise<string>
  /** An executable file that runs `command` inside the namespace (e.g. Chromium for puppeteer). */
  wrapper: (command: string) => Promise<string>
  destroy: () => Promise<void>
}

export async function createNetns (): Promise<Netns> {
  if (process.getuid?.() !== 0) throw new Error('network-namespace tests need root (ip netns add); run them as root, as CI does')
  await run('ip', ['-V']).catch(() => { throw new Error('`ip` (iproute2) is missing: run scripts/install-system.sh') })
  const id = `${process.pid.toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`.slice(-8)
  const name = `shardmesh-${id}`
  const [a, b] = [`sma${id}`, `smb${id}`].map(n => n.slice(0, 15))
  const steps: string[][] = [
    ['netns', 'add', name],
    ['-n', name, 'link', 'set', 'lo', 'up'],
    ['link', 'add', a, 'type', 'veth', 'peer', 'name', b],
    ['link', 'set', a, 'netns', name],
    ['link', 'set', b, 'netns', name],
    ['-n', name, 'addr', 'add', `${NETNS_ADDRESS}/24`, 'dev', a],
    ['-n', name, 'link', 'set', a, 'up'],
    ['-n', name, 'link', 'set', b, 'up'],
    ['-n', name, 'route', 'add', 'default', 'dev', a]
  ]
  try {
    for (const args of steps) await run('ip', args)
  } catch (err) {
    await run('ip', ['netns', 'del', name]).catch(() => {})
    throw new Error(`could not set up network namespace ${name}: ${(err as Error).message}`, { cause: err })
  }
  const dir = await mkdtemp(join(tmpdir(), `${name}-`))
  return {
    name,
    address: NETNS_ADDRESS,
    spawn: (command, args, options = {}) => spawn('ip', ['netns', 'exec', name, command, ...args], options),
    exec: async (command, args) => (await run('ip', ['netns', 'exec', name, command, ...args])).stdout,
    wrapper: async command => {
      const path = join(dir, command.split('/').pop()!)
      await writeFile(path, `#!/bin/sh\nexec ip netns exec ${name} ${command} "$@"\n`)
      await chmod(path, 0o755)
      return path
    },
    destroy: async () => { await run('ip', ['netns', 'del', name]).catch(() => {}) }
  }
}
