/**
 * Resolves on a later macrotask, after pending I/O callbacks: `setImmediate` in Node, a
 * MessageChannel message in browsers (where a zero `setTimeout` is clamped to 4 ms once nested).
 */
export async function nextTask (): Promise<void> {
  await new Promise<void>(resolve => {
    if (typeof setImmediate === 'function') { setImmediate(resolve); return }
    const channel = new MessageChannel()
    channel.port1.onmessage = () => { channel.port1.close(); resolve() }
    channel.port2.postMessage(null)
  })
}
