// The mesh as this node sees it: this node in the middle, every member around it, a line per
// open connection coloured by transport (with its ping round trip), members by status.
import { svg, short } from './dom.ts'
import type { LinkKind, MeshBody } from './types.ts'

export const LINK_COLORS: Record<LinkKind, string> = { webrtc: '#7b3fe4', relay: '#e08a00', websocket: '#1a73e8', tcp: '#188038', other: '#777' }
const STATUS_COLORS: Record<string, string> = { alive: '#d7f5dd', suspect: '#fff1c2', dead: '#fbd3d0' }

export function drawTopology (target: SVGSVGElement, self: string, mesh: MeshBody, stagesOf: Map<string, string>): void {
  const W = 520
  const H = 360
  const others = mesh.peers.filter(p => p.peerId !== self)
  const me = mesh.peers.find(p => p.peerId === self)
  const pos = new Map<string, [number, number]>([[self, [W / 2, H / 2]]])
  others.forEach((p, i) => {
    const a = -Math.PI / 2 + 2 * Math.PI * i / Math.max(1, others.length)
    pos.set(p.peerId, [W / 2 + 190 * Math.cos(a), H / 2 + 130 * Math.sin(a)])
  })
  const nodes: SVGElement[] = []
  /** Drawn last, over the boxes. */
  const labels: SVGElement[] = []
  for (const p of others) {
    const [x, y] = pos.get(p.peerId)!
    const links = p.links.length === 0 ? [undefined] : p.links
    links.forEach((l, i) => {
      const off = (i - (links.length - 1) / 2) * 6
      const line = svg('line', { x1: W / 2 + off, y1: H / 2 + off, x2: x + off, y2: y + off, stroke: l === undefined ? '#bbb' : LINK_COLORS[l.kind], 'stroke-width': l === undefined ? 1 : 2.5, 'stroke-dasharray': l === undefined ? '4 4' : undefined, 'data-link': l?.kind ?? 'none', 'data-peer': p.peerId })
      const title = svg('title', {}, l === undefined ? 'no direct connection (known through gossip)' : `${l.kind}${l.direction === undefined ? '' : ` ${l.direction}`}${l.rttMs === undefined ? '' : `, ping ${l.rttMs} ms`}`)
      line.append(title)
      nodes.push(line)
      if (l !== undefined) labels.push(svg('text', { x: (W / 2 + x) / 2 + off, y: (H / 2 + y) / 2 + off - 4, class: 'link-label' }, `${l.kind}${l.rttMs === undefined ? '' : ` ${l.rttMs} ms`}`))
    })
  }
  for (const p of me === undefined ? others : [me, ...others]) {
    const [x, y] = pos.get(p.peerId)!
    const g = svg('g', { class: 'node', 'data-peer': p.peerId, 'data-status': p.status })
    g.append(svg('rect', { x: x - 62, y: y - 26, width: 124, height: 52, rx: 8, fill: STATUS_COLORS[p.status] ?? '#eee', stroke: p.peerId === mesh.coordinator ? '#000' : '#888', 'stroke-width': p.peerId === mesh.coordinator ? 2.5 : 1 }))
    g.append(svg('text', { x, y: y - 10, class: 'node-id' }, `${short(p.peerId)}${p.peerId === self ? ' (this)' : ''}`))
    g.append(svg('text', { x, y: y + 4 }, `${p.runtime.name} / ${p.backend.kind}`))
    g.append(svg('text', { x, y: y + 18 }, `${p.status}${stagesOf.has(p.peerId) ? ` · ${stagesOf.get(p.peerId)!}` : ''}${p.peerId === mesh.coordinator ? ' · coord' : ''}`))
    g.append(svg('title', {}, p.peerId))
    nodes.push(g)
  }
  target.replaceChildren(...nodes, ...labels)
}
