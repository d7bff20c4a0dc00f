// y = x · Wᵀ for a batch of positions (decode: n = 1; prefill: n > 1).
//   x (n, cols) f32 · W (rows, cols) in its stored dtype → y (n, rows) f32, written at
//   y[t * y_stride + y_offset + r], so k/v projections land straight in the KV cache.
//
// Work split ("lane-split K, register-tiled"): a workgroup has LANES invocations and owns
// ROWS weight rows × TILE_N positions. Lane l accumulates the weight units u ≡ l (mod LANES)
// of its ROWS rows against its TILE_N positions in registers, so each weight unit is loaded
// once per workgroup and used TILE_N times; consecutive lanes read consecutive units
// (coalesced). Then the lanes' partial sums are reduced: by a shared-memory tree whose steps
// come from LANES, or by one subgroupAdd when the workgroup is a single subgroup (SUBGROUPS).
// A dot product's summation order depends on LANES only — not on TILE_N, ROWS or n — so a
// prefill gives the same bits as the same positions decoded one at a time.
//
// The dtype comes in through `dequant_{{WDTYPE}}.wgsl`: it binds the weights (bindings 3, 4)
// and defines UNIT (elements per unit), UNIT_X4 (x vec4s per unit), WUnit, load_unit,
// unit_x_offset and unit_dot.
//
// Specialization: override LANES (workgroup size, a power of two); preprocessor constants
// ROWS, TILE_N (they size register arrays), flags X_VEC4 (cols % 4 == 0), SUBGROUPS.
#if SUBGROUPS
enable subgroups;
#endif

struct Params {
  rows: u32,     // rows of W in this chunk
  cols: u32,     // length of each x row
  units: u32,    // units per (padded) weight row
  n: u32,        // positions
  y_stride: u32, // elements between positions in y
  y_offset: u32, // element of y that receives (t = 0, chunk row 0)
}

@group(0) @binding(0) var<uniform> p: Params;
#if X_VEC4
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>; // (n, cols / 4)
#else
@group(0) @binding(1) var<storage, read> x: array<f32>; // (n, cols)
#endif
@group(0) @binding(2) var<storage, read_write> y: array<f32>; // (n, y_stride)

#include "dequant_{{WDTYPE}}.wgsl"

override LANES: u32 = 64u;
const ROWS: u32 = {{ROWS}}u;
const TILE_N: u32 = {{TILE_N}}u;
const OUTS: u32 = ROWS * TILE_N;

/** x[t, e..e+4) with elements past cols read as 0. */
fn load_x4(t: u32, e: u32) -> vec4<f32> {
#if X_VEC4
  return x[(t * p.cols + e) / 4u];
#else
  let o = t * p.cols + e;
  var v = vec4<f32>(0.0);
  for (var k = 0u; k < 4u; k++) {
    if (e + k < p.cols) { v[k] = x[o + k]; }
  }
  return v;
#endif
}

#if !SUBGROUPS
var<workgroup> red: array<f32, LANES * OUTS>; // (OUTS, LANES) partial sums
#endif

@compute @workgroup_size(LANES)
fn main(@builtin(local_invocation_index) lane: u32,
        @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let r0 = (wid.z * nwg.x + wid.x) * ROWS; // first row of this workgroup
  let t0 = wid.y * TILE_N;                 // first position of this workgroup
  var acc: array<vec4<f32>, OUTS>;         // (ROWS, TILE_N) partial dot products
  for (var u = lane; u < p.units; u += LANES) {
    var xs: array<array<vec4<f32>, UNIT_X4>, TILE_N>; // x of this unit for each position
    for (var j = 0u; j < TILE_N; j++) {
      let t = min(t0 + j, p.n - 1u); // past the end: recompute the last position, never stored
      for (var k = 0u; k < UNIT_X4; k++) { xs[j][k] = load_x4(t, unit_x_offset(u, k)); }
    }
    for (var i = 0u; i < ROWS; i++) {
      let w = load_unit(min(r0 + i, p.rows - 1u), u);
      for (var j = 0u; j < TILE_N; j++) { acc[i * TILE_N + j] += unit_dot(w, xs[j]); }
    }
  }
#if SUBGROUPS
  // the workgroup is one subgroup (LANES <= the adapter's smallest subgroup size)
  for (var k = 0u; k < OUTS; k++) {
    let s = subgroupAdd((acc[k].x + acc[k].y) + (acc[k].z + acc[k].w));
    let i = k / TILE_N;
    let j = k % TILE_N;
    if (lane == 0u && r0 + i < p.rows && t0 + j < p.n) { y[(t0 + j) * p.y_stride + p.y_offset + r0 + i] = s; }
  }
#else
  for (var k = 0u; k < OUTS; k++) { red[k * LANES + lane] = (acc[k].x + acc[k].y) + (acc[k].z + acc[k].w); }
  workgroupBarrier();
  for (var s = LANES / 2u; s > 0u; s >>= 1u) {
    if (lane < s) {
      for (var k = 0u; k < OUTS; k++) { red[k * LANES + lane] += red[k * LANES + lane + s]; }
    }
    workgroupBarrier();
  }
  for (var k = lane; k < OUTS; k += LANES) {
    let i = k / TILE_N;
    let j = k % TILE_N;
    if (r0 + i < p.rows && t0 + j < p.n) { y[(t0 + j) * p.y_stride + p.y_offset + r0 + i] = red[k * LANES]; }
  }
#endif
}
