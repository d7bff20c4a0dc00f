/** An error answered in OpenAI's shape: `{ error: { message, type, param, code } }` with an HTTP status. */
export class ApiError extends Error {
  name = 'ApiError'
  readonly status: number
  readonly type: string
  readonly param: string | null
  readonly code: string | null
  constructor (status: number, message: string, init: { type?: string, param?: string | null, code?: string | null } = {}) {
    super(message)
    this.status = status
    this.type = init.type ?? (status >= 500 ? 'server_error' : 'invalid_request_error')
    this.param = init.param ?? null
    this.code = init.code ?? null
  }

  body (): { error: { message: string, type: string, param: string | null, code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } }
  }
}

export function invalid (param: string, message: string): ApiError {
  return new ApiError(400, message, { param, code: 'invalid_value' })
}
