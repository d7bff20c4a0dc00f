import { ApiError, invalid } from './errors.ts'

export type ChatTemplate = 'llama2' | 'plain'
export interface ChatMessage { role: 'system' | 'user' | 'assistant', content: string }

/**
 * The prompt of a chat:
 * - `llama2` (Llama-2-chat): `[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST] {assistant} </s><s>[INST] {user} [/INST]`
 *   — the tokenizer adds the first BOS; `</s><s>` between turns are written as text pieces.
 * - `plain` (base models such as stories260K): the contents joined by a newline, so the
 *   model continues the text; roles are not written.
 */
export function chatPrompt (messages: ChatMessage[], template: ChatTemplate): string {
  if (template === 'plain') return messages.map(m => m.content).join('\n')
  let system = ''
  let out = ''
  let first = true
  for (const m of messages) {
    if (m.role === 'system') { system = m.content; continue }
    if (m.role === 'user') {
      const sys = system !== '' && first ? `<<SYS>>\n${system}\n<</SYS>>\n\n` : ''
      out += `${first ? '' : '<s>'}[INST] ${sys}${m.content.trim()} [/INST]`
      first = false
    } else {
      out += ` ${m.content.trim()} </s>`
    }
  }
  return out
}

/** Check `messages` of a chat request. */
export function parseMessages (value: unknown): ChatMessage[] {
  if (!Array.isArray(value) || value.length === 0) throw invalid('messages', "'messages' must be a non-empty array")
  return value.map((m, i) => {
    const o = m as Record<string, unknown> | null
    if (typeof o !== 'object' || o === null) throw invalid(`messages[${i}]`, `messages[${i}] must be an object`)
    const role = o.role === 'developer' ? 'system' : o.role
    if (role !== 'system' && role !== 'user' && role !== 'assistant') throw invalid(`messages[${i}].role`, `messages[${i}].role must be system, user or assistant`)
    let content = o.content
    if (Array.isArray(content)) {
      content = content.map((part: { type?: unknown, text?: unknown }) => {
        if (part?.type !== 'text' || typeof part.text !== 'string') throw new ApiError(400, `messages[${i}].content: only text parts are supported`, { param: `messages[${i}].content`, code: 'unsupported_content' })
        return part.text
      }).join('')
    }
    if (typeof content !== 'string') throw invalid(`messages[${i}].content`, `messages[${i}].content must be a string`)
    return { role, content }
  })
}
