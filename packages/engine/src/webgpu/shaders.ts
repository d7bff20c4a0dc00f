import { readFileSync } from 'node:fs'

/**
 * Node: kernel sources are read from the repository's `shaders/` folder next to the
 * packages. Browser bundles load `shaders.browser.ts` instead (package.json `browser` map),
 * which imports the same files as text.
 */
const dir = new URL('../../../../shaders/', import.meta.url)
const cache = new Map<string, string>()

export function shaderSource (file: string): string {
  let text = cache.get(file)
  if (text === undefined) {
    text = readFileSync(new URL(file, dir), 'utf8')
    cache.set(file, text)
  }
  return text
}
