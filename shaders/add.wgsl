// Residual add: x += y over len values. x, y (n, dim).
struct Params { len: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>; // (n, dim)
@group(0) @binding(2) var<storage, read> y: array<f32>;       // (n, dim)

override WG: u32 = 256u;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.y * nwg.x * WG + gid.x;
  if (i >= p.len) { return; }
  x[i] += y[i];
}
