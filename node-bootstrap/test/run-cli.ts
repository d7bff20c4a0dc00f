import { execFile } from 'node:child_process'
import { resolve } from 'node:path'
import { repoRoot } from '../../test/fixtures.ts'

/** The CLI entry point, run unbuilt by Node. */
export const cli = resolve(repoRoot, 'node-bootstrap/src/cli.ts')

export interface CliRun { code: number, stdout: string, stderr: string }

/** Run `shardmesh ARGS` to completion (extra `env` over this process's). */
export async function shardmesh (args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  return await new Promise(res => {
    execFile(process.execPath, [cli, ...args], { env: { ...process.env, ...env }, maxBuffer: 1 << 24 }, (err, stdout, stderr) => {
      res({ code: err === null ? 0 : (err as { code?: number }).code ?? 1, stdout, stderr })
    })
  })
}
