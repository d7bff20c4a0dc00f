// BF16 weights, included by matmul.wgsl and embedding.wgsl (they declare `p.units`).
// A unit is 4 consecutive bfloat16 (two u32 words, element 0 in the low bits); a bfloat16
// is the top half of an f32, so widening is a shift. Rows are zero-padded to a multiple of 4.
@group(0) @binding(3) var<storage, read> w: array<vec2<u32>>; // (rows, units) of 4 × bf16

const UNIT: u32 = 4u;
const UNIT_X4: u32 = 1u;

struct WUnit { v: vec4<f32> }

fn widen(word: u32) -> vec2<f32> {
  return bitcast<vec2<f32>>(vec2<u32>(word << 16u, word & 0xffff0000u));
}

fn load_unit(r: u32, u: u32) -> WUnit {
  let h = w[r * p.units + u];
  return WUnit(vec4<f32>(widen(h.x), widen(h.y)));
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
  return widen(word)[j % 2u];
}
