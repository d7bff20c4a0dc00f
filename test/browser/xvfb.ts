// A virtual X display (Debian's `xvfb`, scripts/install-system.sh) for headed Chromium: the
// browser a person runs, whose background policy (hidden-tab throttling) headless mode does
// not show in full. One Xvfb per caller, on the first free display number from :90.
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'

export const XVFB_PATH = process.env.XVFB_PATH ?? '/usr/bin/Xvfb'

export interface Xvfb {
  /** `:N`, for DISPLAY. */
  display: string
  stop: () => Promise<void>
}

export async function startXvfb (): Promise<Xvfb> {
  if (!existsSync(XVFB_PATH)) throw new Error(`Xvfb not found at ${XVFB_PATH}: headed Chromium needs a display; install Debian's xvfb (bash scripts/install-system.sh, as root) or set XVFB_PATH`)
  for (let n = 90; n < 190; n++) {
    if (existsSync(`/tmp/.X11-unix/X${n}`) || existsSync(`/tmp/.X${n}-lock`)) continue
    const child: ChildProcess = spawn(XVFB_PATH, [`:${n}`, '-screen', '0', '1280x1024x24', '-nolisten', 'tcp'], { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr!.on('data', (d: Buffer) => { stderr += d.toString() })
    // ready when its socket exists; a display taken meanwhile makes it exit: try the next one
    const deadline = Date.now() + 10_000
    while (!existsSync(`/tmp/.X11-unix/X${n}`) && child.exitCode === null && Date.now() < deadline) await new Promise(r => setTimeout(r, 50))
    if (child.exitCode !== null) continue
    if (!existsSync(`/tmp/.X11-unix/X${n}`)) {
      child.kill('SIGKILL')
      throw new Error(`Xvfb :${n} did not open its socket within 10 s: ${stderr.slice(-500)}`)
    }
    return {
      display: `:${n}`,
      stop: async () => {
        if (child.exitCode !== null || child.signalCode !== null) return
        child.kill('SIGTERM')
        await once(child, 'exit')
      }
    }
  }
  throw new Error('no free X display number in :90–:189')
}
