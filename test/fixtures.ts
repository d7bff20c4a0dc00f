import { existsSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The repository root. */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..')

/** `../shared/models/stories260K` beside the checkout (the golden model, see its README). */
export function storiesDir (): string {
  const dir = resolve(repoRoot, '..', 'shared', 'models', 'stories260K')
  if (!existsSync(resolve(dir, 'golden.json'))) {
    throw new Error(`golden model not found at ${dir}: the repository expects ../shared/models/stories260K beside the checkout`)
  }
  return dir
}
