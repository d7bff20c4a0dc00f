// The time-series charts (uPlot): live tokens/s, recoveries on a timeline (stall per event),
// and the recorded generations of the node's history.
import uPlot from 'uplot'
import 'uplot/dist/uPlot.min.css'
import type { Recovery } from './types.ts'

/** Points kept in the live tokens/s chart (one per snapshot, ~1 s apart). */
const LIVE_POINTS = 300
/** The recovery timeline shows at least this much time. */
const TIMELINE_S = 600

const width = (target: HTMLElement): number => Math.max(320, target.clientWidth || 560)
const points = { paths: () => null, points: { show: true, size: 9 } }

function chart (target: HTMLElement, series: uPlot.Series[], data: uPlot.AlignedData, extra: Partial<uPlot.Options> = {}): uPlot {
  const u = new uPlot({ width: width(target), height: 180, series: [{}, ...series], scales: { x: { time: true } }, legend: { live: false }, ...extra }, data, target)
  new ResizeObserver(() => { u.setSize({ width: width(target), height: 180 }) }).observe(target)
  return u
}

export function liveChart (target: HTMLElement): { add: (at: number, tps: number) => void } {
  const xs: number[] = []
  const ys: number[] = []
  const u = chart(target, [{ label: 'tokens/s', stroke: '#1a73e8', fill: 'rgba(26,115,232,0.12)', width: 2 }], [xs, ys], { scales: { x: { time: true, range: () => { const last = xs[xs.length - 1] ?? Date.now() / 1000; return [Math.min(xs[0] ?? last, last - 60), last] } }, y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] } } })
  return {
    add: (at, tps) => {
      xs.push(at / 1000)
      ys.push(tps)
      if (xs.length > LIVE_POINTS) { xs.shift(); ys.shift() }
      u.setData([xs, ys])
    }
  }
}

export function recoveryChart (target: HTMLElement): { set: (events: Recovery[], now: number) => void } {
  let now = Date.now() / 1000
  let first = now
  const u = chart(target, [
    { label: 'resumed: stall ms', stroke: '#188038', ...points },
    { label: 'failed: stall ms', stroke: '#d93025', ...points }
  ], [[], [], []], {
    legend: { show: true, live: false },
    // from the data, not uPlot's padding (which spans years around a single point)
    scales: { x: { time: true, range: () => [Math.min(first, now - TIMELINE_S), now + 5] }, y: { range: (_u, _min, max) => [0, Math.max(100, (max ?? 0) * 1.2)] } }
  })
  return {
    set: (events, at) => {
      now = at / 1000
      const sorted = [...events].sort((a, b) => a.at - b.at)
      first = sorted.length === 0 ? now : sorted[0].at / 1000
      u.setData([sorted.map(e => e.at / 1000), sorted.map(e => e.ok ? e.stallMs : null), sorted.map(e => e.ok ? null : e.stallMs)])
    }
  }
}

export function historyChart (target: HTMLElement): { set: (generations: Array<{ ts: number, decode_tps: number | null, prefill_tps: number | null }>) => void } {
  let span: [number, number] = [Date.now() / 1000 - 60, Date.now() / 1000]
  const u = chart(target, [
    { label: 'decode tok/s', stroke: '#1a73e8', width: 2, points: { show: true } },
    { label: 'prefill tok/s', stroke: '#e08a00', width: 2, points: { show: true } }
  ], [[], [], []], { legend: { show: true, live: false }, scales: { x: { time: true, range: () => span }, y: { range: (_u, _min, max) => [0, Math.max(1, (max ?? 0) * 1.15)] } } })
  return {
    set: generations => {
      const g = [...generations].sort((a, b) => a.ts - b.ts)
      // a minute either side of the first and last (uPlot's own padding spans years around one point)
      if (g.length > 0) span = [g[0].ts / 1000 - 60, g[g.length - 1].ts / 1000 + 60]
      u.setData([g.map(r => r.ts / 1000), g.map(r => r.decode_tps), g.map(r => r.prefill_tps)])
    }
  }
}
