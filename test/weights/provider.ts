import { fork } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { ProviderInit, ProviderReady } from './provider-process.ts'

const SCRIPT = fileURLToPath(new URL('./provider-process.ts', import.meta.url))

export interface ProviderHandle extends ProviderReady {
  child: ChildProcess
  /** SIGKILL: no goodbye, connections drop. */
  kill: () => Promise<void>
  stderr: () => string
}

/** Start provider-process.ts and wait until it has imported the model and announced it. */
export async function startProvider (init: ProviderInit, timeoutMs = 60_000): Promise<ProviderHandle> {
  const child = fork(SCRIPT, [JSON.stringify(init)], { execArgv: [], stdio: ['ignore', 'ignore', 'pipe', 'ipc'] })
  let err = ''
  child.stderr?.on('data', (d: Buffer) => { err = (err + d.toString()).slice(-8000) })
  const exited = new Promise<void>(resolve => { child.once('exit', () => { resolve() }) })
  const kill = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) { child.kill('SIGKILL'); await exited }
  }
  try {
    const ready = await new Promise<ProviderReady>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`provider not ready after ${timeoutMs} ms: ${err}`)) }, timeoutMs)
      child.once('message', (m: ProviderReady) => { clearTimeout(timer); resolve(m) })
      child.once('exit', code => { clearTimeout(timer); reject(new Error(`provider exited (${String(code)}) before it was ready: ${err}`)) })
    })
    return { ...ready, child, kill, stderr: () => err }
  } catch (e) {
    await kill()
    throw e
  }
}
