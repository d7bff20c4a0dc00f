/** Values a kernel is specialized with before compilation. */
export type Defines = Record<string, number | boolean | string>

/**
 * The tiny WGSL preprocessor the kernels in `shaders/` use:
 * - `{{NAME}}` is replaced by the value of define NAME (tile sizes that size arrays, the
 *   weight dtype of an `#include`);
 * - `#include "file.wgsl"` inlines another file of `shaders/`, itself preprocessed;
 * - `#if NAME` / `#if !NAME` / `#else` / `#endif` keep lines by a define's truthiness.
 * Unknown names are errors, so a misspelt define never silently selects a branch.
 */
export function preprocess (file: string, defines: Defines, load: (file: string) => string, depth = 0): string {
  if (depth > 8) throw new RangeError(`shader ${file}: #include nested too deeply`)
  const text = load(file).replace(/\{\{(\w+)\}\}/g, (_, name: string) => String(lookup(file, defines, name)))
  const out: string[] = []
  const stack: Array<{ keep: boolean, parent: boolean, seenElse: boolean }> = []
  let keep = true
  for (const line of text.split('\n')) {
    const directive = /^\s*#(\w+)\s*(.*?)\s*$/.exec(line)
    if (directive === null) {
      if (keep) out.push(line)
      continue
    }
    const [, word, arg] = directive
    if (word === 'if') {
      const negate = arg.startsWith('!')
      const value = Boolean(lookup(file, defines, negate ? arg.slice(1) : arg))
      stack.push({ keep, parent: keep, seenElse: false })
      keep = keep && (negate ? !value : value)
    } else if (word === 'else') {
      const top = stack[stack.length - 1]
      if (top === undefined || top.seenElse) throw new SyntaxError(`shader ${file}: unexpected #else`)
      top.seenElse = true
      keep = top.parent && !keep
    } else if (word === 'endif') {
      const top = stack.pop()
      if (top === undefined) throw new SyntaxError(`shader ${file}: unexpected #endif`)
      keep = top.keep
    } else if (word === 'include') {
      const m = /^"([\w.-]+)"$/.exec(arg)
      if (m === null) throw new SyntaxError(`shader ${file}: bad #include ${arg}`)
      if (keep) out.push(preprocess(m[1], defines, load, depth + 1))
    } else {
      throw new SyntaxError(`shader ${file}: unknown directive #${word}`)
    }
  }
  if (stack.length > 0) throw new SyntaxError(`shader ${file}: #if without #endif`)
  return out.join('\n')
}

function lookup (file: string, defines: Defines, name: string): number | boolean | string {
  const value = defines[name]
  if (value === undefined) throw new RangeError(`shader ${file} needs define ${name}`)
  return value
}
