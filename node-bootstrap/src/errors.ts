/** A usage mistake: bad flags or values. Exit code 2. */
export class CliError extends Error {
  name = 'CliError'
}

/** One line for the user: the error's name and message, the stack only at debug level. */
export function formatError (err: unknown): string {
  if (err instanceof Error) {
    const base = err.name === 'CliError' ? err.message : `${err.name}: ${err.message}`
    return process.env.SHARDMESH_DEBUG === '1' && err.stack !== undefined ? `${base}\n${err.stack}` : base
  }
  return String(err)
}
