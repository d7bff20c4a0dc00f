import { afterAll, describe, expect, it } from 'vitest'
import { createNetns } from './netns.ts'
import type { Netns } from './netns.ts'

describe('test network namespace', () => {
  let ns: Netns | undefined
  afterAll(async () => { await ns?.destroy() })

  it('has loopback and the veth address, and a route that stays inside', async () => {
    ns = await createNetns()
    const addrs = await ns.exec('ip', ['-o', 'addr'])
    expect(addrs).toMatch(/lo\s+inet 127\.0\.0\.1/)
    expect(addrs).toMatch(/inet 10\.231\.1\.2\/24/)
    const route = await ns.exec('ip', ['route', 'get', '10.231.1.2'])
    expect(route).toMatch(/local 10\.231\.1\.2/)
    // the machine's own interfaces are not in the namespace
    expect(addrs.split('\n').filter(l => l.trim() !== '').every(l => /\s(lo|sm[ab])/.test(l))).toBe(true)
  })

  it('lets a process inside reach a server inside on the veth address', async () => {
    ns ??= await createNetns()
    const server = ns.spawn(process.execPath, ['-e', `require('node:http').createServer((q, s) => s.end('inside')).listen(8099, '${ns.address}', () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] })
    try {
      await new Promise(resolve => server.stdout!.once('data', resolve))
      const body = await ns.exec(process.execPath, ['-e', `fetch('http://${ns.address}:8099').then(r => r.text()).then(t => process.stdout.write(t))`])
      expect(body).toBe('inside')
    } finally {
      server.kill('SIGKILL')
    }
  })
})
