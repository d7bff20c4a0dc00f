/**
 * A harness peer in its own process (so it can be SIGKILLed). argv[2]: JSON `{ spec, bootstrap }`.
 * Reports over IPC: `ready`, a snapshot every 100 ms and on every coordinator change, and
 * new election history records as they happen (so they survive a SIGKILL).
 */
import { GatedPeer } from './node-peer.ts'
import type { Command, PeerSpec, Report } from './types.ts'

const { spec, bootstrap } = JSON.parse(process.argv[2]) as { spec: PeerSpec, bootstrap: string[] }
const send = (r: Report): void => { if (process.connected) process.send?.(r) }
const peer = await GatedPeer.create(spec, bootstrap)
const mesh = peer.node.services.mesh

const report = (): void => {
  const records = peer.newHistory()
  if (records.length > 0) send({ type: 'history', records })
  send({ type: 'snapshot', snapshot: peer.snapshot() })
}
mesh.addEventListener('coordinator', report)
const timer = setInterval(report, 100)

process.on('message', (command: Command) => {
  peer.run(command).then(
    value => { send({ type: 'reply', id: command.id, ok: true, value }) },
    err => { send({ type: 'reply', id: command.id, ok: false, error: `${(err as Error).name}: ${(err as Error).message}` }) }
  ).finally(() => {
    if (command.cmd === 'stop') { clearInterval(timer); process.disconnect?.() }
  })
})
process.on('disconnect', () => { clearInterval(timer); void Promise.resolve(peer.node.stop()).finally(() => process.exit(0)) })
send({ type: 'ready', snapshot: peer.snapshot() })
