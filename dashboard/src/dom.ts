// Small DOM helpers: elements built with textContent only (peer ids, runtime names and reasons
// come from the mesh, never as HTML).

type Attrs = Record<string, string | number | boolean | undefined>

export function el<K extends keyof HTMLElementTagNameMap> (tag: K, attrs: Attrs = {}, ...children: Array<Node | string>): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== false) e.setAttribute(k, String(v))
  e.append(...children)
  return e
}

const SVG = 'http://www.w3.org/2000/svg'
export function svg (tag: string, attrs: Attrs = {}, text?: string): SVGElement {
  const e = document.createElementNS(SVG, tag)
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== false) e.setAttribute(k, String(v))
  if (text !== undefined) e.textContent = text
  return e
}

export const byId = <T extends HTMLElement = HTMLElement>(id: string): T => document.getElementById(id) as T

/** `12D3KooW…abcdef`: the end of a peer id tells peers apart. */
export const short = (peerId: string): string => peerId.length > 14 ? `…${peerId.slice(-8)}` : peerId

export const ms = (v: number): string => v >= 10_000 ? `${(v / 1000).toFixed(1)} s` : `${Math.round(v)} ms`
export const time = (at: number): string => new Date(at).toLocaleTimeString()

/** Replace a table body's rows. */
export function rows (table: HTMLTableElement, trs: HTMLTableRowElement[]): void {
  table.tBodies[0].replaceChildren(...trs)
}
