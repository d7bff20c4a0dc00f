// RoPE on the queries of n positions and on their keys, already written into the KV cache.
//   q (n, n_heads, head_dim) in place; k rows start..start+n-1 of the cache
//   (positions, n_kv_heads · head_dim) in place. The cos/sin table is the CPU backend's
//   (computed in float64, stored as f32), so angles never lose precision at long positions.
// `interleaved` pairs (2i, 2i+1) (llama2.c, GGUF); otherwise (i, i + head_dim/2) (HF).
// One invocation per pair: n · (n_heads + n_kv_heads) · head_dim/2 invocations.
struct Params {
  n: u32,
  start: u32,       // position of the first row
  n_heads: u32,
  n_kv_heads: u32,
  head_dim: u32,
  interleaved: u32, // 1: pairs (2i, 2i+1); 0: pairs (i, i + head_dim/2)
  total: u32,       // invocations that do work
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> q: array<f32>;  // (n, n_heads, head_dim)
@group(0) @binding(2) var<storage, read_write> k: array<f32>;  // (positions, n_kv_heads, head_dim)
@group(0) @binding(3) var<storage, read> table: array<vec2<f32>>; // (positions, head_dim/2) of (cos, sin)

override WG: u32 = 64u;

fn rotate(a: f32, b: f32, cs: vec2<f32>) -> vec2<f32> {
  return vec2<f32>(a * cs.x - b * cs.y, a * cs.y + b * cs.x);
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = gid.y * nwg.x * WG + gid.x;
  if (idx >= p.total) { return; }
  let half = p.head_dim / 2u;
  let heads = p.n_heads + p.n_kv_heads;
  let i = idx % half;
  let h = (idx / half) % heads;
  let t = idx / (half * heads);
  let cs = table[(p.start + t) * half + i];
  let stride = select(1u, 2u, p.interleaved == 1u);
  let partner = select(half, 1u, p.interleaved == 1u);
  if (h < p.n_heads) {
    let a = (t * p.n_heads + h) * p.head_dim + i * stride;
    let r = rotate(q[a], q[a + partner], cs);
    q[a] = r.x;
    q[a + partner] = r.y;
  } else {
    let a = ((p.start + t) * p.n_kv_heads + (h - p.n_heads)) * p.head_dim + i * stride;
    let r = rotate(k[a], k[a + partner], cs);
    k[a] = r.x;
    k[a + partner] = r.y;
  }
}
