const levels = ['error', 'warn', 'info', 'debug'] as const
export type LogLevel = typeof levels[number]
let current: number = 2

export function setLogLevel (level: string): void {
  const i = levels.indexOf(level as LogLevel)
  if (i < 0) throw new Error(`unknown log level "${level}" (use ${levels.join(', ')})`)
  current = i
}

/** A logger for one component: lines go to stderr as `[component] message`. */
export function logger (component: string): Record<LogLevel, (msg: string) => void> {
  const at = (i: number) => (msg: string): void => {
    if (i <= current) process.stderr.write(`[${component}] ${msg}\n`)
  }
  return { error: at(0), warn: at(1), info: at(2), debug: at(3) }
}
