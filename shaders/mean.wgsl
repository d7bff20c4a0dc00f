// Mean pooling: out[j] = (x[0][j] + x[1][j] + ... + x[n-1][j]) / n, the rows summed in order
// in f32 (the CPU twin sums in float64 and rounds once). x (n, dim), out (dim).
// One invocation per column: consecutive invocations read consecutive values of a row.
struct Params {
  n: u32,   // rows
  dim: u32, // row length
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;         // (n, dim)
@group(0) @binding(2) var<storage, read_write> out: array<f32>; // (dim)

override WG: u32 = 256u;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let j = gid.y * nwg.x * WG + gid.x;
  if (j >= p.dim) { return; }
  var s = 0.0;
  for (var t = 0u; t < p.n; t++) { s += x[t * p.dim + j]; }
  out[j] = s / f32(p.n);
}
