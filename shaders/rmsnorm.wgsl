// RMSNorm of n rows: out[t] = w ⊙ x[row0 + t] / sqrt(mean(x[row0 + t]²) + eps).
// One workgroup per row; WG invocations sum strided squares, then a shared-memory tree
// (log2 WG steps, derived from WG) gives the row's sum.
struct Params {
  dim: u32,  // row length
  n: u32,    // rows to normalize
  row0: u32, // first row of x to read (the head normalizes only the last rows)
  eps: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;         // (row0 + n, dim)
@group(0) @binding(2) var<storage, read> w: array<f32>;         // (dim)
@group(0) @binding(3) var<storage, read_write> out: array<f32>; // (n, dim)

override WG: u32 = 64u; // a power of two

var<workgroup> red: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let t = wid.x;
  let xo = (p.row0 + t) * p.dim;
  var s = 0.0;
  for (var j = lid; j < p.dim; j += WG) {
    let v = x[xo + j];
    s += v * v;
  }
  red[lid] = s;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k >>= 1u) {
    if (lid < k) { red[lid] += red[lid + k]; }
    workgroupBarrier();
  }
  let scale = 1.0 / sqrt(red[0] / f32(p.dim) + p.eps);
  for (var j = lid; j < p.dim; j += WG) {
    out[t * p.dim + j] = w[j] * (scale * x[xo + j]);
  }
}
