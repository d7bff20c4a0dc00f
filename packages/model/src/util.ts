/** `models/stories260K.gguf?x=1` → `stories260K`: the default model name of a path or URL. */
export function baseName (source: string): string {
  const file = source.split(/[?#]/)[0].split(/[\\/]/).pop() ?? source
  return file.replace(/\.[^.]*$/, '') || source
}
