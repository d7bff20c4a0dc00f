// Softmax of each of n rows of len logits at a temperature:
//   out[t, i] = exp((x[t, i] - max_t) / T) / Σ_i exp((x[t, i] - max_t) / T).
//   x, out (n, len). One workgroup per row; max and sum by shared-memory trees of log2 WG steps.
struct Params {
  len: u32,
  inv_temperature: f32, // 1 / T
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;         // (n, len)
@group(0) @binding(2) var<storage, read_write> out: array<f32>; // (n, len)

override WG: u32 = 256u; // a power of two
const LOWEST: f32 = -3.4028234e38;

var<workgroup> red: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let o = wid.x * p.len;
  var m = LOWEST;
  for (var i = lid; i < p.len; i += WG) { m = max(m, x[o + i]); }
  red[lid] = m;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k >>= 1u) {
    if (lid < k) { red[lid] = max(red[lid], red[lid + k]); }
    workgroupBarrier();
  }
  let mx = red[0];
  workgroupBarrier(); // everyone has read the max before red is reused
  var s = 0.0;
  for (var i = lid; i < p.len; i += WG) {
    let e = exp((x[o + i] - mx) * p.inv_temperature);
    out[o + i] = e;
    s += e;
  }
  red[lid] = s;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k >>= 1u) {
    if (lid < k) { red[lid] += red[lid + k]; }
    workgroupBarrier();
  }
  let inv = 1.0 / red[0];
  for (var i = lid; i < p.len; i += WG) { out[o + i] *= inv; }
}
