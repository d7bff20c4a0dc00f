// A private mesh's peer page URL carries a join token in its fragment (`#join=TOKEN`, never sent
// to a server by the browser on its own). The tab trades it, with its own peer id, for an
// admission ticket at the node that served the page (`POST /api/admission/join`), then joins
// the mesh presenting that ticket.
export interface Admission {
  ticket: string
  meshId: string
}

/** `#join=TOKEN` of the page's URL, if any. */
export function joinTokenOf (location: Location): string | undefined {
  const token = new URLSearchParams(location.hash.replace(/^#/, '')).get('join')
  return token === null || token === '' ? undefined : token
}

export async function redeemJoinToken (page: string, token: string, peerId: string): Promise<Admission> {
  const res = await fetch(new URL('api/admission/join', page), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token, peerId })
  })
  const body = await res.json().catch(() => ({})) as { ticket?: string, meshId?: string, error?: { message?: string } }
  if (!res.ok || typeof body.ticket !== 'string' || typeof body.meshId !== 'string') {
    throw new Error(`the join token was refused (HTTP ${res.status}${body.error?.message === undefined ? '' : `: ${body.error.message}`}): ask the mesh's operator for a new peer page URL`)
  }
  return { ticket: body.ticket, meshId: body.meshId }
}
