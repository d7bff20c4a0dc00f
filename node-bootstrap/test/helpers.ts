/** Small helpers shared by the CLI tests: polling, a process's children, Prometheus samples. */
import { execFileSync } from 'node:child_process'

/** Poll `fn` (every 100 ms) until it gives a value; throws naming `what` after `timeoutMs`. */
export async function waitFor<T> (what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await fn().catch(() => undefined)
    if (v !== undefined) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

/** Pids and command lines of a process's children (e.g. `start --local-peers`' peers). */
export function childrenOf (pid: number): Array<{ pid: number, args: string }> {
  let out: string
  try { out = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(pid)]).toString() } catch { return [] } // ps exits 1 when there are none
  return out.trim().split('\n').filter(l => l.trim() !== '').map(l => {
    const m = /^\s*(\d+)\s+(.*)$/.exec(l)!
    return { pid: Number(m[1]), args: m[2] }
  })
}

/** `name{labels} value` lines of a Prometheus exposition, keyed by `name{labels}` as written. */
export function samples (text: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const at = line.lastIndexOf(' ')
    out.set(line.slice(0, at), Number(line.slice(at + 1)))
  }
  return out
}

/** The text of a streamed completion (`openai` client), calling `onChunk` with the count of chunks read so far. */
export async function streamedText (stream: AsyncIterable<{ choices: Array<{ text?: string }> }>, onChunk: (n: number) => void = () => {}): Promise<string> {
  let text = ''
  let n = 0
  for await (const c of stream) {
    text += c.choices[0]?.text ?? ''
    onChunk(++n)
  }
  return text
}
