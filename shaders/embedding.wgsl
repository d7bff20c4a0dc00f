// Embedding lookup: out[t] = table[tokens[t]], dequantized from the table's dtype.
//   tokens (n) u32; table (rows, dim) through `dequant_{{WDTYPE}}.wgsl`; out (n, dim).
// A table split into row chunks (larger than one storage binding) is looked up once per
// chunk; each pass writes only the positions whose token falls into its rows.
struct Params {
  n: u32,
  dim: u32,
  units: u32, // units per (padded) table row
  row0: u32,  // first table row of this chunk
  rows: u32,  // rows in this chunk
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> tokens: array<u32>;    // (n)
@group(0) @binding(2) var<storage, read_write> out: array<f32>; // (n, dim)

#include "dequant_{{WDTYPE}}.wgsl"

override WG: u32 = 256u;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.y * nwg.x * WG + gid.x;
  if (i >= p.n * p.dim) { return; }
  let t = i / p.dim;
  let j = i % p.dim;
  let id = tokens[t];
  if (id >= p.row0 && id < p.row0 + p.rows) { out[i] = load_elem(id - p.row0, j); }
}
