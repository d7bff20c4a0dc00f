/** `models/stories260K.gguf?x=1` → `stories260K`: the default model name of a path or URL. */
export function baseName (source: string): string {
  const file = source.split(/[?#]/)[0].split(/[\\/]/).pop() ?? source
  return file.replace(/\.[^.]*$/, '') || source
}

/**
 * A value read from a file, short and safe for an error message: JSON (strings quoted unless
 * `quote` is false) cut to `max` characters. Never throws: JSON.stringify and String() overflow
 * the stack on deeply nested arrays and throw on objects with a bad `toString`.
 */
export function preview (value: unknown, quote = true, max = 200): string {
  let s: string
  if (typeof value === 'string' && !quote) s = value
  else {
    try { s = JSON.stringify(value) ?? String(value) } catch { s = Array.isArray(value) ? 'an array' : typeof value }
  }
  return s.length > max ? `${s.slice(0, max)}…` : s
}
