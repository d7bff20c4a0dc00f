// F16 weights, included by matmul.wgsl and embedding.wgsl (they declare `p.units`).
// A unit is 4 consecutive halves (two u32 words, element 0 in the low bits); rows are
// zero-padded to a multiple of 4. unpack2x16float is core WGSL, so no `shader-f16` is
// needed, and the products are taken in f32 like the CPU backend.
@group(0) @binding(3) var<storage, read> w: array<vec2<u32>>; // (rows, units) of 4 × f16

const UNIT: u32 = 4u;
const UNIT_X4: u32 = 1u;

struct WUnit { v: vec4<f32> }

fn load_unit(r: u32, u: u32) -> WUnit {
  let h = w[r * p.units + u];
  return WUnit(vec4<f32>(unpack2x16float(h.x), unpack2x16float(h.y)));
}

fn unit_x_offset(u: u32, k: u32) -> u32 {
  return u * 4u;
}

fn unit_dot(a: WUnit, xs: array<vec4<f32>, UNIT_X4>) -> vec4<f32> {
  return a.v * xs[0];
}

fn load_elem(r: u32, j: u32) -> f32 {
  let h = w[r * p.units + j / 4u];
  let word = select(h.x, h.y, (j % 4u) >= 2u);
  return unpack2x16float(word)[j % 2u];
}
