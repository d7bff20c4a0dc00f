import { describe, expect, it } from 'vitest'
import { shardmesh } from './run-cli.ts'

describe('--ft-level / --recovery', () => {
  it('are listed in the help of start, peer and generate', async () => {
    for (const cmd of ['start', 'peer', 'generate']) {
      const help = await shardmesh([cmd, '--help'])
      expect(help.code).toBe(0)
      expect(help.stdout).toContain('--ft-level')
      expect(help.stdout).toContain('--recovery')
      expect(help.stdout).toContain('progressive')
    }
  })

  it('refuse unknown values with one clear line, before anything starts', async () => {
    const cases: Array<[string[], string]> = [
      [['start', '--port', '0', '--ft-level', 'extreme'], '--ft-level must be one of none, low, medium, high, critical, got "extreme"'],
      [['start', '--port', '0', '--recovery', 'pray'], '--recovery must be one of reconnect, restart, failover, parallel, progressive, coordinated, got "pray"'],
      [['peer', '--bootstrap', '/ip4/127.0.0.1/tcp/1/p2p/12D3KooWGRUVh7U6Yz4ChHjKVG2oHs6yfpFN4F7mJFf9HgPmrYvk', '--ft-level', 'HIGH'], '--ft-level must be one of'],
      [['generate', '--local-peers', '2', '--model', 'nowhere.gguf', '--recovery', ''], '--recovery must be one of']
    ]
    for (const [args, message] of cases) {
      const r = await shardmesh(args)
      expect(r.code).toBe(2)
      expect(r.stderr).toContain(message)
      expect(r.stderr.trim().split('\n')).toHaveLength(1)
    }
  })
})
