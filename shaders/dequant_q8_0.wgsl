// Q8_0 weights, included by matmul.wgsl and embedding.wgsl (they declare `p.units`).
// ggml's 34-byte blocks (f16 scale d + 32 int8 q, value d·q) are repacked at upload into
// two 4-byte-aligned arrays: the scales, two f16 per u32, and the quants, 8 int8 per unit.
// A block is 4 units of 8 consecutive elements.
@group(0) @binding(3) var<storage, read> q: array<vec2<u32>>; // (rows, units) of 8 × int8
@group(0) @binding(4) var<storage, read> d: array<u32>;       // (rows · blocks) f16 scales, 2 per word

const UNIT: u32 = 8u;
const UNIT_X4: u32 = 2u;

struct WUnit { scale: f32, a: vec4<f32>, b: vec4<f32> }

/** The 4 signed bytes of a word, byte 0 first. */
fn int8x4(v: u32) -> vec4<f32> {
  let s = bitcast<i32>(v);
  return vec4<f32>(vec4<i32>((s << 24u) >> 24u, (s << 16u) >> 24u, (s << 8u) >> 24u, s >> 24u));
}

fn scale_of(block: u32) -> f32 {
  return unpack2x16float(d[block / 2u])[block % 2u];
}

fn load_unit(r: u32, u: u32) -> WUnit {
  let v = q[r * p.units + u];
  return WUnit(scale_of(r * (p.units / 4u) + u / 4u), int8x4(v.x), int8x4(v.y));
}

fn unit_x_offset(u: u32, k: u32) -> u32 {
  return u * 8u + k * 4u;
}

fn unit_dot(a: WUnit, xs: array<vec4<f32>, UNIT_X4>) -> vec4<f32> {
  return a.scale * (a.a * xs[0] + a.b * xs[1]);
}

fn load_elem(r: u32, j: u32) -> f32 {
  let v = q[r * p.units + j / 8u];
  let word = select(v.x, v.y, (j % 8u) >= 4u);
  return scale_of(r * (p.units / 4u) + j / 32u) * int8x4(word)[j % 4u];
}
