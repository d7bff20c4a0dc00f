import type { IncomingMessage, ServerResponse } from 'node:http'
import type { ModelConfig, Tokenizer } from '@shardmesh/model'
import type { PipelineGenerateInit, PipelineGenerateResult } from '../driver.ts'
import type { FaultTolerance } from '../fault-tolerance.ts'
import { chatPrompt, parseMessages } from './chat.ts'
import type { ChatTemplate } from './chat.ts'
import { ApiError } from './errors.ts'
import { commonParams, readJson } from './request.ts'

/** A model the API serves, and how to run one generation of it (through the mesh). */
export interface ServedModel {
  id: string
  config: ModelConfig
  tokenizer: Tokenizer
  /** @default 'llama2' when the id or name says chat/instruct, else 'plain' */
  chatTemplate?: ChatTemplate
  /** Seconds since the epoch, for `/v1/models`. @default when the handler was made */
  created?: number
  generate: (init: Omit<PipelineGenerateInit, 'route' | 'faultTolerance'> & { faultTolerance?: Partial<FaultTolerance> }) => Promise<PipelineGenerateResult>
}

export interface OpenAiInit {
  /** Models served now (read on every request, so the mesh can change them). */
  models: () => ServedModel[]
}

/** Routes `/v1/models`, `/v1/completions` and `/v1/chat/completions`; resolves false for other paths. */
export type OpenAiHandler = (req: IncomingMessage, res: ServerResponse) => Promise<boolean>

function sendJson (res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

/**
 * Write one server-sent event. When the response has buffered past its high-water mark (the
 * client reads slower than tokens come), resolve only once it drained or the client left, so
 * the generation waits for the reader instead of the server buffering without bound.
 */
async function sse (res: ServerResponse, body: unknown): Promise<void> {
  if (res.destroyed || res.writableEnded) return
  if (res.write(`data: ${JSON.stringify(body)}\n\n`)) return
  await new Promise<void>(resolve => {
    const done = (): void => { res.off('drain', done); res.off('close', done); resolve() }
    res.on('drain', done)
    res.on('close', done)
  })
}

function toApiError (err: unknown): ApiError {
  if (err instanceof ApiError) return err
  const e = err as Error & { code?: unknown }
  if (e.name === 'ContextLengthError') return new ApiError(400, e.message, { code: 'context_length_exceeded', param: 'messages' })
  if (['StageFailedError', 'StageUnreachableError', 'TimeoutError', 'HopLostError', 'RecoveryFailedError', 'NumericsMismatchError'].includes(e.name)) return new ApiError(503, `the pipeline failed: ${e.message}`, { type: 'server_error', code: typeof e.code === 'string' ? e.code : e.name })
  return new ApiError(500, e.message, { type: 'server_error' })
}

export function createOpenAiHandler (init: OpenAiInit): OpenAiHandler {
  const started = Math.floor(Date.now() / 1000)
  return async (req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    const routes: Record<string, 'models' | 'completions' | 'chat'> = { '/v1/models': 'models', '/v1/completions': 'completions', '/v1/chat/completions': 'chat' }
    const route = routes[path]
    if (route === undefined) return false
    try {
      if (route === 'models') {
        if (req.method !== 'GET') throw new ApiError(405, `use GET for ${path}`, { code: 'method_not_allowed' })
        sendJson(res, 200, { object: 'list', data: init.models().map(m => ({ id: m.id, object: 'model', created: m.created ?? started, owned_by: 'shardmesh' })) })
      } else {
        if (req.method !== 'POST') throw new ApiError(405, `use POST for ${path}`, { code: 'method_not_allowed' })
        await complete(init, route, await readJson(req), req, res)
      }
    } catch (err) {
      const e = toApiError(err)
      if (!res.headersSent) sendJson(res, e.status, e.body())
      else if (!res.destroyed) { void sse(res, e.body()); res.end() }
    }
    return true
  }
}

async function complete (init: OpenAiInit, kind: 'completions' | 'chat', body: Record<string, unknown>, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const p = commonParams(body)
  const model = init.models().find(m => m.id === p.model)
  if (model === undefined) throw new ApiError(404, `The model '${p.model}' does not exist or you do not have access to it.`, { code: 'model_not_found', param: 'model' })
  let text: string
  if (kind === 'chat') {
    const template = model.chatTemplate ?? (/chat|instruct/i.test(`${model.id} ${model.config.name}`) ? 'llama2' : 'plain')
    text = chatPrompt(parseMessages(body.messages), template)
  } else {
    const prompt = Array.isArray(body.prompt) && body.prompt.length === 1 ? body.prompt[0] : body.prompt
    if (typeof prompt !== 'string') throw new ApiError(400, "'prompt' must be a string (or an array of one string)", { param: 'prompt', code: 'invalid_value' })
    text = prompt
  }
  const promptTokens = model.tokenizer.encode(text)
  const context = model.config.contextLength
  if (promptTokens.length >= context) {
    throw new ApiError(400, `This model's maximum context length is ${context} tokens. However, your prompt is ${promptTokens.length} tokens.`, { code: 'context_length_exceeded', param: kind === 'chat' ? 'messages' : 'prompt' })
  }
  if (p.maxTokens !== undefined && promptTokens.length + p.maxTokens > context) {
    throw new ApiError(400, `This model's maximum context length is ${context} tokens. However, you requested ${promptTokens.length + p.maxTokens} tokens (${promptTokens.length} in the prompt, ${p.maxTokens} in the completion).`, { code: 'context_length_exceeded', param: 'max_tokens' })
  }
  const maxTokens = p.maxTokens ?? (kind === 'completions' ? 16 : context - promptTokens.length)
  const id = `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${crypto.randomUUID().replaceAll('-', '')}`
  const created = Math.floor(Date.now() / 1000)
  const object = kind === 'chat' ? (p.stream ? 'chat.completion.chunk' : 'chat.completion') : 'text_completion'
  const decoder = model.tokenizer.streamDecoder({ prev: promptTokens[promptTokens.length - 1] })
  const abort = new AbortController()
  res.once('close', () => { if (!res.writableFinished) abort.abort(new Error('the client went away')) })
  let out = ''
  let sent = 0
  const chunk = (delta: string, finish: string | null, extra: Record<string, unknown> = {}): unknown => ({
    id, object, created, model: model.id,
    choices: [kind === 'chat' ? { index: 0, delta: finish === null ? { content: delta } : {}, logprobs: null, finish_reason: finish } : { index: 0, text: delta, logprobs: null, finish_reason: finish }],
    ...extra
  })
  if (p.stream) {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' })
    if (kind === 'chat') await sse(res, { id, object, created, model: model.id, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }] })
  }
  // text stop sequences: generation ends at the first one, which is not returned
  const emit = async (): Promise<void> => {
    if (p.stream && out.length > sent) {
      // hold back what could still become a stop sequence
      const hold = Math.max(0, ...p.stop.map(s => s.length - 1))
      const upto = Math.max(sent, out.length - hold)
      if (upto > sent) { const text = out.slice(sent, upto); sent = upto; await sse(res, chunk(text, null)) }
    }
  }
  const result = await model.generate({
    promptTokens, maxTokens, sampling: p.sampling, stopIds: model.config.stopIds, signal: abort.signal, faultTolerance: p.faultTolerance,
    // the next token is asked for once this one is written, or buffered within the high-water mark
    onToken: async t => {
      out += decoder.push(t)
      const at = p.stop.map(s => out.indexOf(s)).filter(i => i >= 0)
      if (at.length > 0) { out = out.slice(0, Math.min(...at)); return 'stop' }
      await emit()
    }
  })
  if (result.finishReason !== 'stop') out += decoder.flush()
  const usage = { prompt_tokens: promptTokens.length, completion_tokens: result.tokens.length, total_tokens: promptTokens.length + result.tokens.length }
  if (p.stream) {
    if (out.length > sent) await sse(res, chunk(out.slice(sent), null))
    await sse(res, chunk('', result.finishReason, p.includeUsage ? {} : { usage }))
    if (p.includeUsage) await sse(res, { id, object, created, model: model.id, choices: [], usage })
    res.end('data: [DONE]\n\n')
    return
  }
  const choice = kind === 'chat'
    ? { index: 0, message: { role: 'assistant', content: out, refusal: null }, logprobs: null, finish_reason: result.finishReason }
    : { index: 0, text: out, logprobs: null, finish_reason: result.finishReason }
  sendJson(res, 200, { id, object, created, model: model.id, choices: [choice], usage })
}
