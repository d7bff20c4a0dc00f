/**
 * `shardmesh start --demo PROMPT`: once the mesh serves, one streamed completion through the
 * node's own OpenAI API (so through the planned pipeline of peers), printed as it arrives.
 */
import type { Writable } from 'node:stream'
import { CliError } from './errors.ts'

export interface DemoOptions {
  url: string
  prompt: string
  maxTokens: number
  apiKey?: string
  out: Writable
}

/** Stream the completion to `out`; resolves with the whole text. */
export async function runDemo (o: DemoOptions): Promise<string> {
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  if (o.apiKey !== undefined) headers.authorization = `Bearer ${o.apiKey}`
  const models = await fetch(new URL('/v1/models', o.url), { headers })
  if (!models.ok) throw new CliError(`demo: GET /v1/models answered ${models.status}: ${await models.text()}`)
  const model = ((await models.json()) as { data: Array<{ id: string }> }).data[0]?.id
  if (model === undefined) throw new CliError('demo: the mesh serves no model')
  const res = await fetch(new URL('/v1/completions', o.url), {
    method: 'POST',
    headers,
    body: JSON.stringify({ model, prompt: o.prompt, max_tokens: o.maxTokens, temperature: 0, stream: true })
  })
  if (!res.ok || res.body === null) throw new CliError(`demo: POST /v1/completions answered ${res.status}: ${await res.text()}`)
  o.out.write(`Demo (temperature 0, ${o.maxTokens} tokens through the mesh): ${o.prompt}`)
  let text = ''
  let pending = ''
  const decoder = new TextDecoder()
  const reader = res.body.getReader()
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    pending += decoder.decode(value, { stream: true })
    let nl: number
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl).trim()
      pending = pending.slice(nl + 1)
      if (!line.startsWith('data:')) continue
      const data = line.slice(5).trim()
      if (data === '[DONE]') continue
      const event = JSON.parse(data) as { choices?: Array<{ text?: string }>, error?: { message: string } }
      if (event.error !== undefined) throw new CliError(`demo: ${event.error.message}`)
      const piece = event.choices?.[0]?.text ?? ''
      text += piece
      o.out.write(piece)
    }
  }
  o.out.write('\n')
  return text
}

/** `--demo-tokens`: 1–4096, default 64. */
export function demoTokens (raw: string | boolean | undefined): number {
  if (raw === undefined) return 64
  const n = Number(raw)
  if (!Number.isInteger(n) || n < 1 || n > 4096) throw new CliError(`--demo-tokens must be an integer 1–4096, got "${String(raw)}"`)
  return n
}
