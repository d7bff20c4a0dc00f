/** Poll `fn` every `everyMs` until it returns a value (not undefined or false); a clear error after `timeoutMs`. */
export async function waitFor<T> (what: string, fn: () => T | undefined | false, timeoutMs = 30_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = fn()
    if (v !== undefined && v !== false) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, everyMs))
  }
}
